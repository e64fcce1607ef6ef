import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'serve',
  summary: 'serve a volume over NBD, with cycles while clients write',
  usage:
    'DIR [--port P | --socket PATH] [--cycle-every SECONDS] [--export-name NAME] [--batch-regions N] [--snapshot-dir DIR2]',
  positionals: true,
  options: {
    port: { type: 'string', value: 'P', help: 'the TCP port on 127.0.0.1 (default 10809)' },
    socket: { type: 'string', value: 'PATH', help: 'a Unix socket instead of a TCP port' },
    'cycle-every': {
      type: 'string',
      value: 'SECONDS',
      help: 'run a cycle this often (0 or absent: only on SIGUSR1)',
    },
    'export-name': { type: 'string', value: 'NAME', help: 'the export name (the default export "" is accepted too)' },
    'batch-regions': { type: 'string', value: 'N', help: 'regions transferred per batch of a cycle (default 8)' },
    'snapshot-dir': {
      type: 'string',
      value: 'DIR2',
      help: 'for tests: copy the primary image at each swap and the secondary image at each completion into DIR2',
    },
  },
  notes: [
    'SIGINT or SIGTERM stops the server and closes the volume (a running cycle is resumed',
    'by the next open); SIGUSR1 runs a cycle. See docs/nbd.md.',
  ],
  load: (): Promise<Command> => import('../commands/serve.ts').then((m) => m.command),
} as const satisfies CommandDescription;
