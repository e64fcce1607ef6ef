import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'record',
  summary: 'write a v1 trace from a run',
  usage: "fuzz|explore|conform --out FILE [that command's options]",
  positionals: true,
  forwardsTo: ['fuzz', 'explore', 'conform'],
  options: {
    out: { type: 'string', value: 'FILE', help: 'where the trace goes (required)' },
  },
  notes: [
    'Runs the command with a scratch folder for failures and keeps the trace it wrote: the',
    'shortest failing sequence of fuzz, the counterexample of explore, a failure of conform.',
    'exit status: 0 a trace was recorded, 1 the run found nothing to record, 2 bad usage.',
  ],
  load: (): Promise<Command> => import('../commands/record.ts').then((m) => m.command),
} as const satisfies CommandDescription;
