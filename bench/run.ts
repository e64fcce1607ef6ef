// `make bench`: the benchmarks docs/bench.md describes, each figure a median over
// repeated runs with its spread, every ratio against a baseline measured in the
// same run, interleaved with ours. Prints a table, writes bench/results.json (with
// the machine's description) and bench/RESULTS.md. No timing is asserted: the
// bench exits 1 only when a result is wrong (bytes moved, replica content, a
// failure found by the checker), 2 on a usage error.
//
//   node --import tsx bench/run.ts [--quick] [--dir DIR] [--seed N] [--warm] [--only SECTIONS]
//
//   --quick     a smaller volume, fewer repetitions, shorter budgets (for development)
//   --dir DIR   where the temporary files go (default: the system's temp dir); its
//               file system is the one measured
//   --seed N    the seed of every random choice (default 1)
//   --warm      do not drop the page cache before each cycle contender
//   --only S    a comma-separated subset of: write,swap,cycle,checker,memory,conform,nbd,remote
//               (`--only conform` runs only conformVsDriverRatio, about a minute; `--only nbd`
//               the NBD section, which needs fio with its nbd engine and nbdkit; `--only remote`
//               a cycle to an NBD secondary against nbdcopy, which needs nbdkit and nbdcopy)

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type BenchOutcome, benchPassed, resultsJson, resultsMarkdown, textReport } from './benchOutcome.ts';
import { benchChecker } from './checker.ts';
import { benchConformSpeed } from './conformSpeed.ts';
import { benchCycle } from './cycleCost.ts';
import { type CycleVolume, prepareCycleVolume } from './cycleVolume.ts';
import { benchMemory } from './memory.ts';
import { benchNbd } from './nbd.ts';
import { type Plan, plan } from './plan.ts';
import { benchRemote } from './remote.ts';
import type { Check, SectionResult } from './report.ts';
import { rowOf } from './resultsTable.ts';
import { secondsSince } from './stats.ts';
import { benchSwap } from './swapCost.ts';
import { describeMachine, describeMachineLine, ensureRsync, loadAverages } from './system.ts';
import { benchWritePath } from './writePath.ts';

const sectionNames = ['write', 'swap', 'cycle', 'checker', 'memory', 'conform', 'nbd', 'remote'] as const;
type SectionName = (typeof sectionNames)[number];

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, '..');

const log = (line: string) => process.stderr.write(`${line}\n`);

/** A usage error: the message and the usage on stderr, exit status 2. */
class UsageError extends Error {}

interface Options {
  readonly quick: boolean;
  readonly dir: string | undefined;
  readonly seed: number;
  readonly warm: boolean;
  readonly selected: ReadonlySet<SectionName>;
}

function parseOptions(argv: string[]): Options {
  let values: { quick: boolean; dir?: string; seed: string; warm: boolean; only?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        dir: { type: 'string' },
        seed: { type: 'string', default: '1' },
        warm: { type: 'boolean', default: false },
        only: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new UsageError(`--seed must be a non-negative integer, got ${values.seed}`);
  const only = values.only === undefined ? [...sectionNames] : values.only.split(',').map((name) => name.trim());
  for (const name of only)
    if (!(sectionNames as readonly string[]).includes(name)) throw new UsageError(`unknown section '${name}'`);
  return { quick: values.quick, dir: values.dir, seed, warm: values.warm, selected: new Set(only as SectionName[]) };
}

/** traces/fig4.jsonl and traces/scenarios/*.jsonl, as `cowmap replay` is given them. */
function conformanceTraces(count: number): string[] {
  const scenarios = readdirSync(join(repoRoot, 'traces', 'scenarios'))
    .filter((name) => name.endsWith('.jsonl'))
    .sort()
    .map((name) => join('traces', 'scenarios', name));
  return [join('traces', 'fig4.jsonl'), ...scenarios].slice(0, count);
}

function errorText(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

/** Runs the selected sections in their order; a section that throws becomes a failed check. */
async function runSections(options: Options, settings: Plan, root: string, rsync: boolean) {
  const { seed, selected } = options;
  const sections: SectionResult[] = [];
  const crashes: Check[] = [];
  const runSection = async (name: SectionName, body: () => SectionResult | Promise<SectionResult>) => {
    if (!selected.has(name)) return;
    log(`== ${name}`);
    try {
      sections.push(await body());
    } catch (error) {
      crashes.push({ name: `${name}: the section ran to the end`, ok: false, detail: errorText(error) });
      log(`  ${name} failed: ${errorText(error)}`);
    }
  };
  const cycleConfig = { root, seed, ...settings.cycle, rsync, cold: !options.warm };
  let cycleVolume: CycleVolume | null = null;
  await runSection('write', () => benchWritePath({ root, seed, ...settings.write }, log));
  await runSection('swap', () => benchSwap({ root, seed, ...settings.swap }, log));
  await runSection('cycle', () => {
    cycleVolume = prepareCycleVolume(cycleConfig, log);
    return benchCycle(cycleConfig, cycleVolume, log);
  });
  const traceFiles = conformanceTraces(settings.checker.traceCount);
  await runSection('checker', () => benchChecker({ root, repoRoot, seed, traceFiles, ...settings.checker }, log));
  await runSection('memory', () => {
    // The cycle child runs on the cycle benchmark's volume (made here when that section did not run).
    if (cycleVolume === null && !selected.has('cycle')) cycleVolume = prepareCycleVolume(cycleConfig, log);
    const memoryConfig = { root, repoRoot, seed, dirtyFraction: settings.cycle.dirtyFraction, ...settings.memory };
    return benchMemory(memoryConfig, cycleVolume, log);
  });
  await runSection('conform', () => benchConformSpeed({ root, repoRoot, seed, ...settings.conform }, log));
  await runSection('nbd', () => benchNbd({ root, repoRoot, seed, ...settings.nbd }, log));
  await runSection('remote', () => benchRemote({ root, seed, ...settings.remote }, log));
  return { sections, crashes };
}

async function main(argv: string[]): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    const usage = `node --import tsx bench/run.ts [--quick] [--dir DIR] [--seed N] [--warm] [--only ${sectionNames.join(',')}]`;
    process.stderr.write(`bench: ${error.message}\nusage: ${usage}\n`);
    return 2;
  }
  const settings = plan(options.quick);
  const root = mkdtempSync(join(resolve(options.dir ?? tmpdir()), 'cowmap-bench-'));
  const startedAt = new Date();
  const started = process.hrtime.bigint();
  // Installed first, so that the machine's description names the rsync that runs.
  const rsync = options.selected.has('cycle') && ensureRsync(log) !== null;
  const machine = describeMachine(root);
  log(`cowmap bench${options.quick ? ' --quick' : ''}: ${describeMachineLine(machine)}`);
  log(`temporary files in ${root}`);
  if (machine.loadAverageAtStart[0]! > machine.cores / 2) {
    log(
      `warning: load average ${machine.loadAverageAtStart[0]} on ${machine.cores} cores: other work is running, ` +
        'and every figure will show it',
    );
  }
  let ran: Awaited<ReturnType<typeof runSections>>;
  try {
    ran = await runSections(options, settings, root, rsync);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const { sections, crashes } = ran;
  const outcome: BenchOutcome = {
    quick: options.quick,
    seed: options.seed,
    startedAt,
    seconds: secondsSince(started),
    machine,
    loadAverageAtEnd: loadAverages(),
    settings,
    sections,
    figures: sections.flatMap((section) => section.figures),
    checks: [...sections.flatMap((section) => section.checks), ...crashes],
  };
  const rows = outcome.figures.map(rowOf);
  process.stdout.write(textReport(outcome, rows));
  writeFileSync(join(benchDir, 'results.json'), resultsJson(outcome));
  writeFileSync(join(benchDir, 'RESULTS.md'), resultsMarkdown(outcome, rows));
  log(`wrote ${join('bench', 'results.json')} and ${join('bench', 'RESULTS.md')}`);
  return benchPassed(outcome) ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
