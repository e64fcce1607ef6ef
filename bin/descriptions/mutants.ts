import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'mutants',
  summary: 'the mutation self-check',
  usage: '[--seed N] [--time-budget S] [--quick] [--only NAME,...] [--stages KEY,...]',
  options: {
    seed: { type: 'string', value: 'N', default: '1', help: 'the seed of every randomised stage' },
    'time-budget': {
      type: 'string',
      value: 'S',
      default: '30',
      help: 'seconds for each randomised stage and each conform run',
    },
    quick: { type: 'boolean', default: false, help: 'the quick stages (as verify --quick)' },
    only: { type: 'string', value: 'NAME,...', help: 'only these mutants (harness/mutants/mutants.ts)' },
    stages: {
      type: 'string',
      value: 'KEY,...',
      help: 'only these stages: fig4, traces, paths, fuzz, crashes, crashes-wide, conform',
    },
  },
  notes: [
    'Runs each stage on its own against each broken variant of the reference implementation',
    '(conform through `cowmap adapter --mutant NAME`) and prints a table: caught (and when)',
    'or missed per stage. A mutant that none of the stages asked for reaches is not run,',
    'and said so. exit status: 0 every mutant run is caught, 1 one escaped, 2 bad usage.',
  ],
  load: (): Promise<Command> => import('../commands/mutants.ts').then((m) => m.command),
} as const satisfies CommandDescription;
