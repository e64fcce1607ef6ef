import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'replay',
  summary: 'replay traces',
  usage: '[--model-only | --mutant NAME] FILE... [-- CMD...]',
  positionals: true,
  trailingCommand: true,
  options: {
    'model-only': { type: 'boolean', help: 'replay on the model alone' },
    mutant: { type: 'string', value: 'NAME', help: 'replay beside the named mutant of the reference implementation' },
  },
  notes: [
    'Without --model-only, each trace runs on the model beside the reference implementation,',
    'or beside the implementation that CMD starts (adapter protocol 1).',
    'exit status: 0 every trace passes, 1 a trace fails (its file, line, step and both states',
    'are printed), 2 a trace is invalid or bad usage.',
  ],
  load: (): Promise<Command> => import('../commands/replay.ts').then((m) => m.command),
} as const satisfies CommandDescription;
