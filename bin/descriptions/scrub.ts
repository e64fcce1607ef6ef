import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'scrub',
  summary: 'check every checksum and the secondary; --repair marks what fails for the next cycle',
  usage: 'DIR [--repair] [--json] [--secondary DIR2]',
  positionals: true,
  options: {
    repair: {
      type: 'boolean',
      help: 'open read-write and repair what a resend can (below)',
    },
    json: { type: 'boolean', help: 'print the report as one JSON object instead of lines' },
    secondary: { type: 'string', value: 'DIR2', help: 'the secondary is there, not where the volume recorded it' },
  },
  notes: [
    'Reads both metadata slots, every map page, every COW entry of the running cycle and',
    "its slot, every page of the secondary's digest table, every region of the secondary",
    'against its digest (except regions of a running cycle not sent since the open), and',
    'every region of the primary that no map bit and no COW copy covers against the same',
    'digest. Each mismatch is one line: E_CORRUPT: <file> offset <n> region <r>: <problem>.',
    '--repair marks every affected region in the next map (the next cycle resends it from the',
    'primary), rewrites failing table and map pages, and drops a COW copy that fails its digest',
    '(that region is then not point-in-time for the running cycle). Metadata is never repaired.',
    'exit status: 0 no finding (or every one repaired), 1 a finding left, 2 bad usage.',
  ],
  load: (): Promise<Command> => import('../commands/scrub.ts').then((m) => m.command),
} as const satisfies CommandDescription;
