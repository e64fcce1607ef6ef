// The cowmap command line: one file per command under bin/commands/, loaded
// only when it runs, so that `cowmap diagram` does not pay for the harness.

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  init: { summary: 'create a volume: init DIR --regions N --region-size BYTES [--secondary DIR2]', load: () => import('./commands/init.ts').then((m) => m.command) },
  write: { summary: 'write a region or a byte range: write DIR --region R --label TEXT | --offset O [--file F]', load: () => import('./commands/write.ts').then((m) => m.command) },
  read: { summary: 'read a region or a byte range: read DIR --region R | --offset O --length L [--secondary]', load: () => import('./commands/read.ts').then((m) => m.command) },
  cycle: { summary: 'run (or resume) one replication cycle: cycle DIR', load: () => import('./commands/cycle.ts').then((m) => m.command) },
  status: { summary: 'show the phase, the maps and the counts: status DIR', load: () => import('./commands/status.ts').then((m) => m.command) },
  replay: { summary: 'replay traces: replay [--model-only | --mutant NAME] FILE... [-- CMD...]', load: () => import('./commands/replay.ts').then((m) => m.command) },
  explore: { summary: 'explore every model state: explore --regions N --values V [--crash] [--states-max M]', load: () => import('./commands/explore.ts').then((m) => m.command) },
  fuzz: { summary: 'fast-check command sequences: fuzz [--seed N] [--path P] [--runs R] [--time-budget S] [--regions N] [--mutant NAME]', load: () => import('./commands/fuzz.ts').then((m) => m.command) },
  crashes: { summary: 'bounded exhaustive crash exploration: crashes [--length L] [--regions N] [--values V] [--modes process,power,torn] [--subset-bits B] [--samples S] [--mutant NAME]', load: () => import('./commands/crashes.ts').then((m) => m.command) },
  mutants: { summary: 'the mutation self-check: mutants [--seed N] [--time-budget S] [--quick] [--only NAME,...]', load: () => import('./commands/mutants.ts').then((m) => m.command) },
  adapter: { summary: 'serve the reference implementation over adapter protocol 1: adapter [--mutant NAME]', load: () => import('./commands/adapter.ts').then((m) => m.command) },
  record: { summary: 'write a v1 trace from a run: record fuzz|explore|conform --out FILE [options]', load: () => import('./commands/record.ts').then((m) => m.command) },
  conform: { summary: 'conformance: conform [--up-to L | --level L] [--check ID] [--time-budget S] [--seed N [--path P]] [--regions N --region-size B] [--report F.json] [--junit F.xml] -- CMD...', load: () => import('./commands/conform.ts').then((m) => m.command) },
  verify: { summary: 'the main job: verify [--time-budget S] [--seed N] [--mutant NAME] [--quick]', load: () => import('./commands/verify.ts').then((m) => m.command) },
  serve: { summary: 'serve the primary over NBD: serve DIR [--port P | --socket PATH] [--cycle-every SECONDS]', load: () => import('./commands/serve.ts').then((m) => m.command) },
  diagram: { summary: 'print the statechart as Mermaid stateDiagram-v2', load: () => import('./commands/diagram.ts').then((m) => m.command) },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return ['usage: cowmap <command> [options]', '', 'commands:', ...lines].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  const entry = commands[name];
  if (entry === undefined) {
    process.stderr.write(`cowmap: unknown command '${name}'\n${usage()}\n`);
    return 2;
  }
  const command = await entry.load();
  try {
    return await command.run(rest);
  } catch (error) {
    // util.parseArgs throws for unknown or malformed options: bad usage, exit 2.
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`E_BAD_REQUEST: cowmap ${name}: ${(error as Error).message}\n`);
      return 2;
    }
    throw error;
  }
}
