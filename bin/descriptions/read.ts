import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'read',
  summary: 'read a region or a byte range',
  usage: 'DIR --region R | --offset O --length L [--secondary | --consistent]',
  positionals: true,
  options: {
    region: { type: 'string', value: 'R', help: 'the region to read' },
    offset: { type: 'string', value: 'O', help: 'read bytes from this byte offset, with --length' },
    length: { type: 'string', value: 'L', help: 'the number of bytes to read, with --offset' },
    secondary: { type: 'boolean', help: 'read the secondary instead of the primary' },
    consistent: {
      type: 'boolean',
      help: "read the consistent image (the primary at the last completed cycle's swap) of a receiver directory or of a volume's consistent secondary",
    },
  },
  notes: [
    'Opens the volume read-only (nothing is written: works on a read-only file system).',
    'With --consistent, DIR is a `cowmap receive` directory (E_LOCKED while receive runs) or a',
    'volume whose secondary is `consistent:`. See docs/receive.md.',
    'A byte range goes to standard output a piece at a time, whatever its length.',
  ],
  load: (): Promise<Command> => import('../commands/read.ts').then((m) => m.command),
} as const satisfies CommandDescription;
