import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'verify',
  summary: 'the main job: verify the reference implementation against the model',
  usage: '[--time-budget S] [--seed N] [--mutant NAME] [--quick] [--reports DIR] [--traces DIR]',
  options: {
    'time-budget': { type: 'string', value: 'S', help: 'seconds per randomised stage (default 60, 10 with --quick)' },
    seed: { type: 'string', value: 'N', help: 'the seed (default random, printed)' },
    mutant: { type: 'string', value: 'NAME', help: 'verify the named mutant instead (it should fail)' },
    quick: { type: 'boolean', default: false, help: 'small stages (for CI smoke runs)' },
    reports: { type: 'string', value: 'DIR', default: 'reports', help: 'where the transition coverage goes' },
    traces: { type: 'string', value: 'DIR', help: "the traces' folder (default the bundled ones)" },
  },
  notes: [
    'Every stage: the FIG. 4 trace, every trace, path tests, fast-check sequences, the crash',
    'exploration, the transition gate; a summary table and the coverage reports.',
  ],
  load: (): Promise<Command> => import('../commands/verify.ts').then((m) => m.command),
} as const satisfies CommandDescription;
