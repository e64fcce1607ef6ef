import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'fuzz',
  summary: 'fast-check command sequences against the reference implementation',
  usage: '[--seed N [--path P]] [--runs R] [--time-budget S] [--regions N] [--region-size B] [--mutant NAME] [...]',
  options: {
    seed: { type: 'string', value: 'N', help: 'the seed (default random, printed first)' },
    path: { type: 'string', value: 'P', help: 'with --seed: replay the counterexample at this path' },
    runs: { type: 'string', value: 'R', help: 'the number of sequences' },
    'time-budget': { type: 'string', value: 'S', help: 'stop after S seconds' },
    regions: { type: 'string', value: 'N', help: 'regions of the volume (the settings line says the default)' },
    'region-size': { type: 'string', value: 'B', help: 'region size in bytes, a multiple of 512' },
    data: { type: 'string', value: 'labels|bytes', help: 'what writes write: labels, or bytes at any offset' },
    labels: { type: 'string', value: 'L', help: 'with --data labels: distinct labels per region' },
    'commands-max': { type: 'string', value: 'C', help: 'the longest sequence' },
    'io-max': { type: 'string', value: 'K', help: 'the latest I/O call a crash may cut' },
    'crash-modes': {
      type: 'string',
      value: 'LIST|none',
      help: 'crash modes, a comma list of process, power, torn (default what the implementation offers)',
    },
    'crash-between': { type: 'string', value: 'yes|no', default: 'yes', help: 'crash between operations too' },
    'history-operations': { type: 'string', value: 'N', help: 'every sequence has at least N operations' },
    'history-cycles': { type: 'string', value: 'M', help: 'every sequence completes at least M cycles' },
    mutant: { type: 'string', value: 'NAME', help: 'run against the named mutant of the reference implementation' },
    'out-dir': { type: 'string', value: 'DIR', help: 'where the failing sequence is saved (default traces/failures)' },
    quiet: { type: 'boolean', default: false, help: 'no progress line' },
  },
  notes: [
    'exit status: 0 no failure, 1 a failure (the shortest failing sequence is saved as a v1',
    'trace, and the commands that replay it are printed), 2 bad usage.',
  ],
  load: (): Promise<Command> => import('../commands/fuzz.ts').then((m) => m.command),
} as const satisfies CommandDescription;
