import { serveDefaults } from '../../impl/nbd/serveDefaults.ts';
import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'serve',
  summary: 'serve a volume over NBD, with cycles while clients write',
  usage:
    'DIR [--port P | --socket PATH] [--cycle-every SECONDS] [--export-name NAME] [--batch-regions N] [--snapshot-dir DIR2]' +
    ' [--max-request-bytes N] [--buffer-bytes N] [--max-connections N] [--handshake-timeout SECONDS]' +
    ' [--request-timeout SECONDS] [--batch-requests N] [--chunk-bytes N] [--summary-every SECONDS]',
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
    'batch-regions': {
      type: 'string',
      value: 'N',
      help: `regions per transfer slice of a cycle, one sync of the secondary each (default: ${serveDefaults.sliceBytes >> 20} MiB of regions)`,
    },
    'snapshot-dir': {
      type: 'string',
      value: 'DIR2',
      help: 'for tests, a directory secondary only: copy the primary image at each swap and the secondary image at each completion into DIR2',
    },
    'max-request-bytes': {
      type: 'string',
      value: 'N',
      help: `largest READ/WRITE payload; more is refused with EINVAL (default ${serveDefaults.payloadMax})`,
    },
    'buffer-bytes': {
      type: 'string',
      value: 'N',
      help: `one cap on payload and reply bytes held, all connections together (default ${serveDefaults.bufferBytesMax})`,
    },
    'max-connections': {
      type: 'string',
      value: 'N',
      help: `more connections are closed at once (default ${serveDefaults.connectionsMax})`,
    },
    'handshake-timeout': {
      type: 'string',
      value: 'SECONDS',
      help: `close a connection still in the handshake after this (default ${serveDefaults.handshakeTimeoutSeconds})`,
    },
    'request-timeout': {
      type: 'string',
      value: 'SECONDS',
      help: `close a connection whose request payload stalls this long (default ${serveDefaults.requestTimeoutSeconds})`,
    },
    'batch-requests': {
      type: 'string',
      value: 'N',
      help: `most requests in one group-commit batch (default ${serveDefaults.batchRequestsMax})`,
    },
    'chunk-bytes': {
      type: 'string',
      value: 'N',
      help: `TRIM and WRITE_ZEROES run in chunks of this size, one per batch (default ${serveDefaults.chunkBytes})`,
    },
    'summary-every': {
      type: 'string',
      value: 'SECONDS',
      help: `a summary line this often when no cycle sent anything; 0: never (default ${serveDefaults.summaryEverySeconds})`,
    },
  },
  notes: [
    'SIGINT or SIGTERM stops the server and closes the volume (a running cycle is resumed',
    'by the next open); SIGUSR1 runs a cycle. See docs/nbd.md (its "Limits" section for the options).',
    'With an NBD secondary (init --secondary nbd://...) a link fault pauses the cycle, which is',
    'retried after 0.5 s, 1 s, 2 s ... up to 30 s while clients are served; cowmap status shows the link.',
  ],
  load: (): Promise<Command> => import('../commands/serve.ts').then((m) => m.command),
} as const satisfies CommandDescription;
