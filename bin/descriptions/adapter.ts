import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'adapter',
  summary: 'serve the reference implementation over adapter protocol 1',
  usage: '[--mutant NAME]',
  options: {
    mutant: { type: 'string', value: 'NAME', help: 'serve the named mutant of the reference implementation instead' },
  },
  notes: [
    'Requests on standard input, answers on standard output (docs/adapter.md), logs on',
    'standard error; the features failpoint, power-loss and torn.',
    'exit status: 0 when standard input closes, 86 at a failpoint (without answering),',
    '2 bad usage.',
  ],
  load: (): Promise<Command> => import('../commands/adapter.ts').then((m) => m.command),
} as const satisfies CommandDescription;
