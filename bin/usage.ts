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
  init: { summary: 'create a volume', usage: 'init DIR --regions N --region-size BYTES [--secondary DIR2]' },
  write: { summary: 'write a region or a byte range', usage: 'write DIR --region R --label TEXT | --offset O [--file F]' },
  read: { summary: 'read a region or a byte range', usage: 'read DIR --region R | --offset O --length L [--secondary]' },
  cycle: { summary: 'run (or resume) one replication cycle', usage: 'cycle DIR' },
  status: { summary: 'show the phase, the maps and the counts', usage: 'status DIR' },
  scrub: { summary: 'check every checksum and the secondary', usage: 'scrub DIR [--repair] [--json] [--secondary DIR2]' },
  replay: { summary: 'replay traces', usage: 'replay [--model-only | --mutant NAME] FILE... [-- CMD...]' },
  explore: { summary: 'explore every model state', usage: 'explore --regions N --values V [--crash] [--states-max M] [--out FILE] [--quiet]' },
  fuzz: {
    summary: 'fast-check command sequences',
    usage: 'fuzz [--seed N] [--path P] [--runs R] [--time-budget S] [--regions N] [--region-size B] [--data labels|bytes] [--mutant NAME] [--out-dir DIR] [...]',
  },
  crashes: {
    summary: 'bounded exhaustive crash exploration',
    usage: 'crashes [--length L] [--regions N] [--values V] [--modes process,power,torn] [--subset-bits B] [--samples S] [--mutant NAME]',
  },
  mutants: { summary: 'the mutation self-check', usage: 'mutants [--seed N] [--time-budget S] [--quick] [--only NAME,...] [--stages KEY,...]' },
  adapter: { summary: 'serve the reference implementation over adapter protocol 1', usage: 'adapter [--mutant NAME]' },
  record: { summary: 'write a v1 trace from a run', usage: 'record fuzz|explore|conform --out FILE [options]' },
  conform: {
    summary: 'conformance of an implementation',
    usage: 'conform [--up-to L | --level L] [--check ID] [--time-budget S] [--seed N [--path P]] [--regions N --region-size B] [--report F.json] [--junit F.xml] -- CMD...',
  },
  verify: { summary: 'the main job', usage: 'verify [--time-budget S] [--seed N] [--mutant NAME] [--quick] [--reports DIR] [--traces DIR]' },
  serve: {
    summary: 'serve the primary over NBD',
    usage: 'serve DIR [--port P | --socket PATH] [--cycle-every SECONDS] [--export-name NAME] [--batch-regions N] [--snapshot-dir DIR2]',
  },
  diagram: { summary: 'print the statechart as Mermaid stateDiagram-v2', usage: 'diagram [--markdown]' },
};

/** The usage of `name` (starting with the name), or a pointer to the listing for a name we do not know. */
export function usageOf(name: string): string {
  return commandUsages[name]?.usage ?? '<command> [options] (cowmap --help lists the commands)';
}
