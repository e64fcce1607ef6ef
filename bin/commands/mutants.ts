// cowmap mutants [--seed N] [--time-budget S] [--quick] [--only NAME,...] [--stages KEY,...]
// The mutation self-check: runs each verify stage on its own against each named
// broken variant of the reference implementation, and `conform` against each
// through the adapter (`cowmap adapter --mutant NAME`), and prints a table: for
// every stage, caught (and the time to detection) or missed, and the first check
// that fails; then, for conform, the level and check that caught each mutant and
// the seconds it took. Exit 1 if any mutant escapes every stage run.
// `--time-budget S` is the budget of each randomised verify stage and of each
// whole conform run (conform's own default is 240 s: `--time-budget 240` runs
// conform as a user's default run does).
//
// `--stages` picks stages by key (fig4, traces, paths, fuzz, crashes, crashes-wide,
// conform); crashes-wide is the 17-region exploration of `cowmap crashes`.
// `make test` runs only the two generic nets, fuzz and crashes, which must catch
// every mutant they can reach on their own; a mutant whose class none of the
// stages asked for reaches (harness/mutants/mutants.ts `reachedBy`: regions 8 and up,
// long histories, a second process) is not run, and said so.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdapterSut } from '../../harness/adapter/adapterSut.ts';
import { ProtocolError } from '../../harness/adapter/protocolError.ts';
import { exploreCrashes } from '../../harness/exploration/explorer.ts';
import type { VolumeClass } from '../../harness/types.ts';
import { defaultPlan } from './crashes.ts';
import { runConformance } from '../../harness/conformance/run.ts';
import type { ConformanceReport } from '../../harness/conformance/result.ts';
import { mutants, mutantStageKeys } from '../../harness/mutants/mutants.ts';
import type { MutantStageKey } from '../../harness/mutants/mutants.ts';
import { ReferenceSut } from '../../harness/sut/referenceSut.ts';
import { bundledTracesDir, traceFiles } from '../../harness/trace/traceFiles.ts';
import { standardStages } from '../../harness/verifyPlan.ts';
import { verify } from '../../harness/verify.ts';
import type { Values } from '../command.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/mutants.ts';
import { budgetSecondsBounds, integerOption, seedBounds } from '../integerOption.ts';
import { mutantOption } from '../mutantOption.ts';
import { UsageError } from '../usageError.ts';

interface Detection {
  readonly stage: string;
  readonly caught: boolean;
  readonly seconds: number;
  readonly check: string;
}

/** What conform said about one mutant. */
interface ConformDetection extends Detection {
  /** The level whose check caught it (null when missed, or when the adapter broke the protocol first). */
  readonly level: string | null;
}

interface Row {
  readonly name: string;
  readonly description: string;
  readonly detections: readonly Detection[];
  readonly conform: ConformDetection | null;
}

/** Stage keys for --stages, matched against the start of each verify stage's name; `conform` is the adapter run. */
const verifyStageKeys: Readonly<Record<VerifyStageKey, RegExp>> = {
  fig4: /^FIG\. 4/,
  traces: /^traces\//,
  paths: /^path tests/,
  fuzz: /^fast-check/,
  crashes: /^crash exploration/,
};
const conformKey: MutantStageKey = 'conform';
const wideKey: MutantStageKey = 'crashes-wide';
const wideStageName = 'crash exploration, wide (17 regions)';

/**
 * The wide geometry of `cowmap crashes` (17 regions: three map bytes, three
 * sectors of COW entries), which no verify stage runs: a bug past the first map
 * byte or index sector shows only there.
 */
async function wideCrashes(volumeClass: VolumeClass, quick: boolean, failuresDir: string): Promise<Detection> {
  const shape = defaultPlan[1]!;
  const result = await exploreCrashes({
    ...shape,
    ...(quick ? { activeRegions: [0, 16], values: 1, recoveryPathsMax: 4, rotStatesMax: 2, scrubStatesMax: 1 } : {}),
    volumeClass,
    failuresDir,
  });
  const caught = result.failure !== null;
  return {
    stage: wideStageName,
    caught,
    seconds: result.stats.seconds,
    check: caught ? checkOf(result.failure!.message) : '',
  };
}
const stageKeys: readonly string[] = mutantStageKeys;
const conformStageName = 'conform (adapter)';

/** The `cowmap` launcher, so that the adapter runs from any working directory. */
const cowmapBin = fileURLToPath(new URL('../cowmap.js', import.meta.url));

/** The first line of a failure that says which check it was. */
function checkOf(message: string): string {
  const line =
    message.split('\n').find((text) => /differs|allows|says|broke|breaks|expected|rejects|not one/.test(text)) ??
    message.split('\n')[0]!;
  return line
    .trim()
    .replace(/^line \d+ '[^']*': |^step \d+ '[^']*': |^path \d+: |^step \d+ \([^)]*\): /, '')
    .slice(0, 80);
}

/**
 * Where conform caught the mutant: the failing check (the run stops at the first
 * failure without --keep-going), and the seconds of the whole run, which is the
 * time a user waits for the verdict (the shrinking of a failure included).
 */
export function firstCatch(report: ConformanceReport): ConformDetection {
  for (const level of report.levels) {
    for (const check of level.checks) {
      if (check.failure !== null) {
        return {
          stage: conformStageName,
          caught: true,
          seconds: report.seconds,
          level: level.level,
          check: `${check.name}: ${checkOf(check.failure.message)}`,
        };
      }
    }
  }
  // A run that could not judge (the adapter broke the protocol) rejects the implementation too.
  if (report.error !== null)
    return {
      stage: conformStageName,
      caught: true,
      seconds: report.seconds,
      level: null,
      check: `the run could not judge: ${report.error.message.split('\n')[0]!.slice(0, 80)}`,
    };
  return {
    stage: conformStageName,
    caught: !report.conforms,
    seconds: report.seconds,
    level: null,
    check: report.conforms ? '' : 'DOES NOT CONFORM',
  };
}

/** `cowmap conform` against the mutant served by `cowmap adapter --mutant NAME`, every level. */
async function conformAgainst(
  name: string,
  options: { seed: number; budgetSeconds: number; quick: boolean; failuresDir: string },
): Promise<ConformDetection> {
  const command = [process.execPath, cowmapBin, 'adapter', '--mutant', name];
  const sut = new AdapterSut(command);
  const started = performance.now();
  try {
    const report = await runConformance({
      command,
      level: 'power',
      seed: options.seed,
      budgetSeconds: options.budgetSeconds,
      traces: traceFiles(bundledTracesDir),
      failuresDir: join(options.failuresDir, name),
      sut,
      tracesDir: bundledTracesDir,
      quick: options.quick,
    });
    return firstCatch(report);
  } catch (error) {
    // An adapter that breaks the protocol is rejected too (conform exits 2 for it).
    if (!(error instanceof ProtocolError)) throw error;
    const seconds = (performance.now() - started) / 1000;
    return {
      stage: conformStageName,
      caught: true,
      seconds,
      level: null,
      check: `the adapter broke the protocol: ${error.message.split('\n')[0]!.slice(0, 80)}`,
    };
  } finally {
    sut.kill();
  }
}

/** What the progress line says of conform's run against a mutant (nothing when conform did not run). */
function conformNote(conform: ConformDetection | null): string {
  if (conform === null) return '';
  const where = conform.caught
    ? `at ${conform.level ?? 'the protocol'} in ${conform.seconds.toFixed(1)} s`
    : 'MISSED it';
  return `; conform ${where}`;
}

function stageTable(rows: readonly Row[]): string[] {
  const withStages = rows.filter((row) => row.detections.length > 0);
  const stageNames = withStages[0]?.detections.map((d) => d.stage) ?? [];
  if (stageNames.length === 0) return [];
  return [
    `| mutant | what it breaks | ${stageNames.join(' | ')} | first check that fails |`,
    `|---|---|${stageNames.map(() => '---|').join('')}---|`,
    ...withStages.map((row) => {
      const cells = row.detections.map((d) => (d.caught ? `caught in ${d.seconds.toFixed(2)} s` : '**missed**'));
      const first = [...row.detections, ...(row.conform === null ? [] : [row.conform])].find((d) => d.caught);
      return `| ${row.name} | ${row.description} | ${cells.join(' | ')} | ${first === undefined ? '**MISSED**' : first.check.replace(/\|/g, '\\|')} |`;
    }),
    '',
  ];
}

function conformTable(rows: readonly Row[]): string[] {
  const run = rows.filter((row) => row.conform !== null);
  if (run.length === 0) return [];
  return [
    '`cowmap conform` through `cowmap adapter --mutant NAME`:',
    '',
    '| mutant | caught | level | check that caught it | seconds to be caught |',
    '|---|---|---|---|---|',
    ...run.map((row) => {
      const d = row.conform!;
      const level = d.level ?? (d.caught ? '(protocol)' : '');
      const seconds = d.caught ? d.seconds.toFixed(1) : `(${d.seconds.toFixed(1)} run)`;
      return `| ${row.name} | ${d.caught ? 'yes' : '**no**'} | ${level} | ${d.check.replace(/\|/g, '\\|')} | ${seconds} |`;
    }),
    '',
  ];
}

type VerifyStageKey = Exclude<MutantStageKey, 'conform' | 'crashes-wide'>;

/** What the options ask for: the mutants to run (and those skipped), the stages, the seed and budget. */
interface Selection {
  readonly seed: number;
  readonly budget: number;
  readonly quick: boolean;
  readonly names: readonly string[];
  readonly skipped: readonly string[];
  readonly verifyKeys: readonly VerifyStageKey[];
  readonly runWide: boolean;
  readonly runConform: boolean;
}

function selectionOf(values: Values<typeof description.options>): Selection {
  const seed = integerOption('seed', values.seed, seedBounds);
  const budget = integerOption('time-budget', values['time-budget'], budgetSecondsBounds);
  const asked = values.only === undefined ? Object.keys(mutants) : values.only.split(',');
  for (const name of asked) mutantOption(name);
  const keys = values.stages === undefined ? stageKeys : values.stages.split(',');
  for (const key of keys) {
    if (!stageKeys.includes(key)) throw new UsageError(`no stage '${key}' (stages: ${stageKeys.join(', ')})`);
  }
  // A mutant that none of the stages asked for reaches would be missed by design: it is not run.
  const names = asked.filter((name) => {
    const reachedBy = mutants[name]!.reachedBy;
    return reachedBy === undefined || reachedBy.some((key) => keys.includes(key));
  });
  return {
    seed,
    budget,
    quick: values.quick,
    names,
    skipped: asked.filter((name) => !names.includes(name)),
    verifyKeys: keys.filter((key) => key !== conformKey && key !== wideKey) as VerifyStageKey[],
    runWide: keys.includes(wideKey),
    runConform: keys.includes(conformKey),
  };
}

/**
 * Every selected stage against the mutant `name`, each on its own, so the table
 * shows what each check catches, not only the first: the hand-written traces
 * should not be the only net. Failing traces go to `scratch`.
 */
async function mutantRow(name: string, selection: Selection, scratch: string): Promise<Row> {
  const mutant = mutants[name]!;
  const { seed, budget, quick, verifyKeys } = selection;
  const selected = (stageName: string) => verifyKeys.some((key) => verifyStageKeys[key].test(stageName));
  const stages = standardStages({ quick, mutantName: name, volumeClass: mutant.volumeClass }).filter((stage) =>
    selected(stage.name),
  );
  if (stages.length !== verifyKeys.length)
    throw new Error(`mutants: ${stages.length} stages matched ${verifyKeys.length} keys`);
  const detections: Detection[] = [];
  for (const stage of stages) {
    const result = await verify([stage], {
      makeSut: () => new ReferenceSut({ volumeClass: mutant.volumeClass, name: `mutant ${name}` }),
      seed,
      budgetSeconds: budget,
      traceFiles: traceFiles(bundledTracesDir),
      failuresDir: scratch,
    });
    const stageResult = result.stages[0]!;
    const caught = stageResult.failure !== null;
    detections.push({
      stage: stage.name,
      caught,
      seconds: stageResult.seconds,
      check: caught ? checkOf(stageResult.failure!) : '',
    });
  }
  if (selection.runWide) detections.push(await wideCrashes(mutant.volumeClass, quick, scratch));
  const conform = selection.runConform
    ? await conformAgainst(name, { seed, budgetSeconds: budget, quick, failuresDir: scratch })
    : null;
  return { name, description: mutant.description, detections, conform };
}

/** The tables, the count of caught and missed mutants, and the mutants not run. */
function summaryLines(rows: readonly Row[], selection: Selection): { lines: string[]; missed: number } {
  const { seed, budget, runConform, skipped } = selection;
  const missed = rows.filter(
    (row) => ![...row.detections, ...(row.conform === null ? [] : [row.conform])].some((d) => d.caught),
  ).length;
  const conformMissed = rows.filter((row) => row.conform !== null && !row.conform.caught).length;
  const lines = [
    ...stageTable(rows),
    ...conformTable(rows),
    `${rows.length - missed} caught, ${missed} missed (seed ${seed}, time budget ${budget} s per randomised stage` +
      `${runConform ? ' and per conform run' : ''})` +
      (runConform ? `; conform caught ${rows.length - conformMissed} of ${rows.length}` : ''),
    ...(skipped.length === 0
      ? []
      : [
          `not run (none of these stages reaches their class): ${skipped
            .map((name) => `${name} (reached by ${mutants[name]!.reachedBy!.join(', ')})`)
            .join(', ')}`,
        ]),
  ];
  return { lines, missed };
}

export const command = defineCommand(description, async ({ values }) => {
  const selection = selectionOf(values);
  // Failing traces of mutants go to a scratch folder: they are expected, not news.
  const scratch = mkdtempSync(join(tmpdir(), 'cowmap-mutants-'));
  const rows: Row[] = [];
  try {
    for (const name of selection.names) {
      const row = await mutantRow(name, selection, scratch);
      rows.push(row);
      const all = [...row.detections, ...(row.conform === null ? [] : [row.conform])];
      const caughtBy = all.filter((d) => d.caught).length;
      process.stderr.write(
        `${caughtBy === 0 ? 'MISSED' : 'caught'} ${name}: ${caughtBy}/${all.length} stages${conformNote(row.conform)}\n`,
      );
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const { lines, missed } = summaryLines(rows, selection);
  process.stdout.write(`${lines.join('\n')}\n`);
  return missed > 0 ? 1 : 0;
});
