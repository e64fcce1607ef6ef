import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'status',
  summary: 'show the phase, the maps and the counts',
  usage: 'DIR',
  positionals: true,
  options: {},
  notes: [
    'Opens the volume read-only: recovery runs in memory and nothing is written, so',
    'it works on a read-only or full file system.',
  ],
  load: (): Promise<Command> => import('../commands/status.ts').then((m) => m.command),
} as const satisfies CommandDescription;
