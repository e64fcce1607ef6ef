import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'status',
  summary: 'show the phase, the maps and the counts',
  usage: 'DIR|DIR2 [--json]',
  positionals: true,
  options: {
    json: { type: 'boolean', help: 'one JSON object instead of the lines' },
  },
  notes: [
    'Opens the volume read-only: recovery runs in memory and nothing is written, so',
    'it works on a read-only or full file system. While cowmap serve holds the volume,',
    "shows the server's status from DIR/serve.status instead: its connections, the",
    "cycle, the regions left and the age of the secondary's point in time.",
    'An NBD secondary: its URL, the link (up, down, idle), the last error and its age, the',
    "failed attempts, and the far side's last completed cycle with the age of its point in",
    'time; a volume nobody serves asks the far side (one connect, nothing written).',
    "A receiver's directory (cowmap receive DIR2, or a consistent: secondary): its volume,",
    'the last completed cycle and the age of its point in time, the running cycle and its',
    'journal bytes; while cowmap receive runs, from DIR2/receive.status.',
  ],
  load: (): Promise<Command> => import('../commands/status.ts').then((m) => m.command),
} as const satisfies CommandDescription;
