import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'init',
  summary: 'create a volume',
  usage: 'DIR --regions N --region-size BYTES [--secondary DIR2 [--consistent] | --secondary NBD-URL]',
  positionals: true,
  options: {
    regions: { type: 'string', value: 'N', help: 'the number of regions (required)' },
    'region-size': { type: 'string', value: 'BYTES', help: 'the size of a region, a multiple of 512 (required)' },
    secondary: {
      type: 'string',
      value: 'DIR2|URL',
      help: 'the secondary: a directory (default DIR/secondary), or an NBD export nbd://HOST[:PORT][/EXPORT] or nbd+unix:///EXPORT?socket=PATH',
    },
    consistent: {
      type: 'boolean',
      help: 'the directory secondary keeps a consistent image (cowmap read DIR2 --consistent), as cowmap receive does',
    },
  },
  notes: [
    'The geometry is checked before anything is created (E_SIZE); a failed init',
    'removes what it made.',
    'An NBD secondary must be exactly N * BYTES + 4096 bytes (the volume, then a control',
    'block naming it) and never used by a volume before (its last 4096 bytes all zero):',
    "init zeroes it (E_CORRUPT for a wrong size or another volume's export, E_IO when it",
    'cannot be reached). Make one with, e.g., truncate -s SIZE FILE; nbdkit file FILE.',
    'See docs/remote.md.',
  ],
  load: (): Promise<Command> => import('../commands/init.ts').then((m) => m.command),
} as const satisfies CommandDescription;
