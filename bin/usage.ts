// What each `cowmap` command is for and how it is called: the one table that the
// usage listing, each command's --help and every usage error print from.

export interface CommandUsage {
  /** What the command does, in a few words. */
  summary: string;
  /** How it is called, starting with its name (printed after "usage: cowmap "). */
  usage: string;
  /** What --help says beyond the usage line. */
  notes?: string[];
}

export const commandUsages: Record<string, CommandUsage> = {
  init: {
    summary: 'create a volume',
    usage: 'init DIR --regions N --region-size BYTES [--secondary DIR2]',
    notes: ['The geometry is checked before anything is created (E_SIZE); a failed init', 'removes what it made.'],
  },
  write: {
    summary: 'write a region or a byte range',
    usage: 'write DIR --region R --label TEXT | --offset O [--file F]',
    notes: [
      'With --offset the bytes come from F, or from standard input without --file, and go to',
      'the volume a piece at a time. F missing: E_NOT_FOUND; F a directory: E_BAD_REQUEST;',
      'more bytes than fit from O to the end of the volume: E_RANGE (a regular file is',
      'refused before anything is written; standard input when the excess arrives).',
    ],
  },
  read: {
    summary: 'read a region or a byte range',
    usage: 'read DIR --region R | --offset O --length L [--secondary]',
    notes: [
      'Opens the volume read-only (nothing is written: works on a read-only file system).',
      'A byte range goes to standard output a piece at a time, whatever its length.',
    ],
  },
  cycle: { summary: 'run (or resume) one replication cycle', usage: 'cycle DIR' },
  status: {
    summary: 'show the phase, the maps and the counts',
    usage: 'status DIR',
    notes: [
      'Opens the volume read-only: recovery runs in memory and nothing is written, so',
      'it works on a read-only or full file system.',
    ],
  },
  scrub: {
    summary: 'check every checksum and the secondary',
    usage: 'scrub DIR [--repair] [--json] [--secondary DIR2]',
  },
  replay: { summary: 'replay traces', usage: 'replay [--model-only | --mutant NAME] FILE... [-- CMD...]' },
  explore: {
    summary: 'explore every model state',
    usage: 'explore --regions N --values V [--crash] [--states-max M] [--out FILE] [--quiet]',
  },
  fuzz: {
    summary: 'fast-check command sequences',
    usage:
      'fuzz [--seed N] [--path P] [--runs R] [--time-budget S] [--regions N] [--region-size B] [--data labels|bytes] [--mutant NAME] [--out-dir DIR] [...]',
  },
  crashes: {
    summary: 'bounded exhaustive crash exploration',
    usage:
      'crashes [--quick] [--length L] [--regions N] [--active R,...] [--values V] [--region-size B] [--modes process,power,torn] [--subset-bits B] [--samples S] ' +
      '[--no-create] [--no-recovery] [--no-rot] [--no-byte-tears] [--recovery-paths P] [--rot-states K] [--mutant NAME] [--out-dir DIR]',
    notes: [
      'By default three geometries (2 regions searched deep, 17 and 1,030 regions written at both ends), each',
      'crashed at every durable call of every operation, of create, of recovery (and inside that recovery) and',
      'of scrub --repair, in process, power and torn modes (records torn inside a sector too), and with rot:',
      'a byte flipped in each checksummed structure. Prints the crash states per kind and the time.',
    ],
  },
  mutants: {
    summary: 'the mutation self-check',
    usage: 'mutants [--seed N] [--time-budget S] [--quick] [--only NAME,...] [--stages KEY,...]',
  },
  adapter: { summary: 'serve the reference implementation over adapter protocol 1', usage: 'adapter [--mutant NAME]' },
  record: { summary: 'write a v1 trace from a run', usage: 'record fuzz|explore|conform --out FILE [options]' },
  conform: {
    summary: 'conformance of an implementation',
    usage:
      'conform [--up-to L | --level L] [--check ID] [--time-budget S] [--seed N [--path P]] [--regions N --region-size B] [--report F.json] [--junit F.xml] -- CMD...',
  },
  verify: {
    summary: 'the main job',
    usage: 'verify [--time-budget S] [--seed N] [--mutant NAME] [--quick] [--reports DIR] [--traces DIR]',
  },
  serve: {
    summary: 'serve the primary over NBD',
    usage:
      'serve DIR [--port P | --socket PATH] [--cycle-every SECONDS] [--export-name NAME] [--batch-regions N] [--snapshot-dir DIR2]',
  },
  diagram: { summary: 'print the statechart as Mermaid stateDiagram-v2', usage: 'diagram [--markdown]' },
};

/** The usage of `name` (starting with the name), or a pointer to the listing for a name we do not know. */
export function usageOf(name: string): string {
  return commandUsages[name]?.usage ?? '<command> [options] (cowmap --help lists the commands)';
}
