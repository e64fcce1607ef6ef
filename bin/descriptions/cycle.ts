import { linkOptionsDefault } from '../../impl/remote/linkOptions.ts';
import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'cycle',
  summary: 'run (or resume) one replication cycle',
  usage: 'DIR [--retry-seconds S]',
  positionals: true,
  options: {
    'retry-seconds': {
      type: 'string',
      value: 'S',
      help: `how long each step keeps retrying an unreachable or failing NBD secondary (default ${linkOptionsDefault.retryBudgetMs / 1000})`,
    },
  },
  notes: [
    'Swaps the maps (or resumes the cycle a crash interrupted), sends every region of the',
    'current map to the secondary, completes. A progress bar goes to standard error when',
    'it is a terminal.',
    'With an NBD secondary (docs/remote.md) a batch counts as sent only once the FLUSH after',
    'it returned, and the cycle completes only after the secondary confirmed it. A link fault',
    'is retried with backoff; past --retry-seconds the command fails with E_IO, the cycle',
    'stays running and the volume usable: the next cycle command resumes it.',
  ],
  load: (): Promise<Command> => import('../commands/cycle.ts').then((m) => m.command),
} as const satisfies CommandDescription;
