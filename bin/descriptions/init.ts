import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'init',
  summary: 'create a volume',
  usage: 'DIR --regions N --region-size BYTES [--secondary DIR2]',
  positionals: true,
  options: {
    regions: { type: 'string', value: 'N', help: 'the number of regions (required)' },
    'region-size': { type: 'string', value: 'BYTES', help: 'the size of a region, a multiple of 512 (required)' },
    secondary: { type: 'string', value: 'DIR2', help: 'where the secondary goes (default DIR/secondary)' },
  },
  notes: ['The geometry is checked before anything is created (E_SIZE); a failed init', 'removes what it made.'],
  load: (): Promise<Command> => import('../commands/init.ts').then((m) => m.command),
} as const satisfies CommandDescription;
