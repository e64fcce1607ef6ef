import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'explore',
  summary: 'explore every model state',
  usage: '[--regions N] [--values V] [--crash] [--consistent] [--states-max M] [--out FILE] [--quiet]',
  options: {
    regions: { type: 'string', value: 'N', default: '3', help: 'regions of the model' },
    values: { type: 'string', value: 'V', default: '2', help: 'distinct values written per region' },
    crash: { type: 'boolean', default: false, help: 'crash and recover in every state too' },
    consistent: {
      type: 'boolean',
      default: false,
      help: "model the secondary's consistent image D as a state of its own (INV-DR in every state)",
    },
    'states-max': { type: 'string', value: 'M', default: '5000000', help: 'stop after this many states' },
    out: {
      type: 'string',
      value: 'FILE',
      default: 'explore-counterexample.jsonl',
      help: 'where the shortest path to a violation goes, as a v1 trace',
    },
    quiet: { type: 'boolean', default: false, help: 'no progress line' },
  },
  notes: ['exit status: 0 every invariant holds, 1 a violation (its shortest path printed), 2 bad usage.'],
  load: (): Promise<Command> => import('../commands/explore.ts').then((m) => m.command),
} as const satisfies CommandDescription;
