import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'cycle',
  summary: 'run (or resume) one replication cycle',
  usage: 'DIR',
  positionals: true,
  options: {},
  notes: [
    'Swaps the maps (or resumes the cycle a crash interrupted), sends every region of the',
    'current map to the secondary, completes. A progress bar goes to standard error when',
    'it is a terminal.',
  ],
  load: (): Promise<Command> => import('../commands/cycle.ts').then((m) => m.command),
} as const satisfies CommandDescription;
