import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'crashes',
  summary: 'bounded exhaustive crash exploration',
  usage:
    '[--quick] [--length L] [--regions N --active R,...] [--values V] [--region-size B] [--modes LIST] [--mutant NAME] [...]',
  options: {
    quick: { type: 'boolean', default: false, help: 'the first two geometries, shallow (seconds, for make test)' },
    length: { type: 'string', value: 'L', help: 'operation sequences up to L long (one geometry of your own)' },
    regions: { type: 'string', value: 'N', help: 'regions of that geometry (past 8, with --active)' },
    active: { type: 'string', value: 'R,...', help: 'the regions written (1 to 8)' },
    values: { type: 'string', value: 'V', help: 'distinct values written per region' },
    'region-size': { type: 'string', value: 'B', help: 'region size in bytes, a multiple of 512' },
    modes: { type: 'string', value: 'LIST', help: 'crash modes, a comma list of process, power, torn (default all)' },
    'subset-bits': { type: 'string', value: 'B', help: 'power mode: every subset of unsynced writes up to 2^B' },
    samples: { type: 'string', value: 'S', help: 'power mode: past 2^B, S seeded samples' },
    'no-dedupe': { type: 'boolean', default: false, help: 'explore prefixes that reach the same state again' },
    'no-create': { type: 'boolean', default: false, help: 'no crashes inside create' },
    'no-recovery': { type: 'boolean', default: false, help: 'no crashes inside recovery' },
    'no-rot': { type: 'boolean', default: false, help: 'no flipped bytes' },
    'no-byte-tears': { type: 'boolean', default: false, help: 'no records torn inside a sector' },
    'recovery-paths': { type: 'string', value: 'P', help: 'crash up to P recovery paths' },
    'rot-states': { type: 'string', value: 'K', help: 'flip bytes at K kinds of prefix states' },
    mutant: { type: 'string', value: 'NAME', help: 'explore the named mutant of the reference implementation' },
    'out-dir': { type: 'string', value: 'DIR', help: 'where a failing trace is saved (default traces/failures)' },
    quiet: { type: 'boolean', default: false, help: 'no progress line' },
  },
  notes: [
    'By default three geometries (2 regions searched deep, 17 and 1,030 regions written at both ends), each',
    'crashed at every durable call of every operation, of create, of recovery (and inside that recovery) and',
    'of scrub --repair, in process, power and torn modes (records torn inside a sector too), and with rot:',
    'a byte flipped in each checksummed structure. Prints the crash states per kind and the time.',
    "Then the receiver's store (cowmap receive): 40 seeded histories of cycles (1 with --quick) crashed",
    'after every durable call in each mode and inside recovery; a line of counts per mode.',
    'exit status: 0 every crash state passes, 1 a failure (saved and printed), 2 bad usage.',
  ],
  load: (): Promise<Command> => import('../commands/crashes.ts').then((m) => m.command),
} as const satisfies CommandDescription;
