import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'receive',
  summary: "serve a consistent secondary over NBD: a primary's cycles applied atomically",
  usage: 'DIR2 (--port P [--host H] | --socket PATH) [--regions N --region-size BYTES] [--export-name NAME]',
  positionals: true,
  options: {
    port: { type: 'string', value: 'P', help: 'the TCP port to listen on' },
    host: { type: 'string', value: 'H', help: 'the address to listen on, with --port (default 127.0.0.1)' },
    socket: { type: 'string', value: 'PATH', help: 'a Unix socket instead of a TCP port' },
    regions: { type: 'string', value: 'N', help: "the primary's number of regions (to create DIR2; checked after)" },
    'region-size': {
      type: 'string',
      value: 'BYTES',
      help: "the primary's region size (to create DIR2; checked after)",
    },
    'export-name': { type: 'string', value: 'NAME', help: 'the export name (the default export "" is accepted too)' },
  },
  notes: [
    'The first run creates DIR2 for a primary of --regions x --region-size (the export is',
    'that image plus a 4096-byte control block); later runs open it. Holds the lock of DIR2.',
    'SIGINT or SIGTERM stops it (flushed). `cowmap read DIR2 --consistent` reads the image of',
    'the last completed cycle once it stopped. See docs/receive.md.',
  ],
  load: (): Promise<Command> => import('../commands/receive.ts').then((m) => m.command),
} as const satisfies CommandDescription;
