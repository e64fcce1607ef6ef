// fast-check command sequences: random sequences of writes, swaps, transfers (of
// current and of non-current regions), completions (early and drained), whole
// cycles, reads, crashes between operations and crashes inside an operation
// after its k-th I/O call (process, power and torn), each followed by a
// recovery, and a kill inside an operation whose recovery is followed by a power
// loss inside the next one, run against an implementation through the oracle.
//
// Regions are picked over the whole volume, boundaries favoured (geometry.ts);
// writes carry full-region bytes (regionData.ts) unless data is 'labels'. A
// history minimum makes every searched sequence long enough (operations and
// completed cycles since create) to cross counters and slot reuse.
//
// The design, in fast-check's own style: ONE small command class
// (PlannedCommand, in fuzzCommands.ts) holding planned steps, made concrete at run time from a small
// fast-check model (FuzzModel): the bytes a write carries (near-copies of what
// the run wrote), the regions a cycle sends (a superset of C). The model is
// deliberately coarser than the system and only plans; the real judge is the
// oracle inside `real`, which steps the statechart beside the implementation,
// compares their whole states, checks every invariant and judges every recovered
// state. Rejections are generated on purpose and the oracle checks that the
// implementation gives the model's code.
//
// On a failure fast-check shrinks the sequence; the shortest failing one is run
// again through runScenario, which records it, and saved as a v1 trace in
// traces/failures/fuzz-<seed>.jsonl with the seed, the path, the failure and the
// commands that replay it.
//
// Replaying a fast-check counterexample of `fc.commands` needs, besides the seed
// and the shrink path, the commands' replayPath (which commands ran at each shrink
// step): the path this module prints is `<fast-check path>@<replayPath>`. The
// plans are replayed too: the same commands on the same model make the same steps.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { sectorSize } from '../impl/geometry.ts';
import { allTransitions } from '../model/transitions.ts';
import type { Geometry } from '../model/types.ts';
import { commandArbitrary, cycleWeightFor, freshModel, SequenceRun, shortOfHistory } from './fuzzCommands.ts';
import type { FuzzData, FuzzModel, Generation, HistoryMin } from './fuzzCommands.ts';
import { Oracle, OracleFailure } from './oracle.ts';
import type { Difference } from './oracle.ts';
import { replayTrace } from './replay.ts';
import { describeScenarioStep, runScenario, scenarioTrace } from './scenario.ts';
import type { ScenarioStep } from './scenario.ts';
import type { SystemUnderTest } from './sut.ts';
import { ContentBook } from './trace/content.ts';
import { shellQuote } from './shellQuote.ts';
import { readTrace } from './trace/reader.ts';
import type { FaultMode } from './types.ts';

export const fuzzDefaults = {
  regions: 4,
  labels: 3,
  commandsMax: 50,
  regionSize: 512,
  ioMax: 12,
  numRuns: 100,
  data: 'bytes' as FuzzData,
  failuresDir: join('traces', 'failures'),
  /** Shrinking stops after this long (the counterexample found so far is kept). */
  shrinkBudgetMs: 120_000,
} as const;

const runsUnbounded = 1_000_000_000;

export interface FuzzProgress {
  readonly phase: 'search' | 'shrink';
  readonly runs: number;
  readonly shrinks: number;
  readonly steps: number;
  readonly seconds: number;
}

export interface FuzzOptions {
  readonly seed: number;
  /** A counterexample to replay: the path a failing run printed (`<fast-check path>@<replayPath>`). */
  readonly path?: string;
  /** Runs to try (default 100, or unbounded with a time budget). */
  readonly numRuns?: number;
  /** No new run starts after this long; a failure found in time is still shrunk. */
  readonly timeBudgetMs?: number;
  readonly regions: number;
  /** With data 'labels': labels per region, writes carry `A1`..`A<labels>` and so on (default 3). */
  readonly labels?: number;
  /** Commands a sequence has at most (default 50; raised to reach historyMin). */
  readonly commandsMax?: number;
  /**
   * What generated writes carry (default 'bytes'): full-region seeded random
   * content and near-copies of earlier content differing only in the last byte,
   * one middle sector or the last sector, and now and then zeros; or 'labels',
   * short labels padded with zeros.
   */
  readonly data?: FuzzData;
  /** Every generated sequence has at least this many operations and completed cycles (the search skips shorter ones; shrinking may go below). */
  readonly historyMin?: HistoryMin;
  /** Default 512. Above one sector, labels reach into the second sector, so that a torn write can mix them. */
  readonly regionSize?: number;
  /** Crashes inside an operation come after its k-th I/O call, k in 0..ioMax (default 12). */
  readonly ioMax?: number;
  readonly makeSut: () => SystemUnderTest;
  /** The crashes inside an operation to generate (default: what the implementation's features offer; [] for none). */
  readonly crashModes?: readonly FaultMode[];
  /** Whether to generate crashes between operations (default true). */
  readonly crashBetween?: boolean;
  /** Where a failing sequence is saved (default traces/failures). */
  readonly failuresDir?: string;
  /** Extra arguments for the printed `cowmap fuzz` replay command (e.g. `--mutant NAME`). */
  readonly replayArgs?: readonly string[];
  /**
   * The commands a saved failure prints, given its trace file and fast-check path
   * (default: `cowmap replay FILE` and `cowmap fuzz ...`, which run the reference
   * implementation; conform gives commands that run the user's adapter).
   */
  readonly replayCommands?: (tracePath: string, path: string) => readonly string[];
  readonly shrinkBudgetMs?: number;
  readonly onProgress?: (progress: FuzzProgress) => void;
}

export interface FuzzFailure {
  /** The oracle's message (or the error's) for the shortest failing sequence. */
  readonly message: string;
  readonly differences: readonly Difference[];
  /** The path to give `cowmap fuzz --path` with the same seed. */
  readonly path: string;
  /** The shortest failing sequence, as scenario steps (up to the failing one). */
  readonly steps: readonly ScenarioStep[];
  /** The failing step (0-based index into `steps`). */
  readonly stepIndex: number;
  readonly tracePath: string;
  readonly trace: string;
  /** The saved trace, replayed on a fresh implementation, fails again. */
  readonly reproduced: boolean;
  /** The shrink budget ran out: a shorter failing sequence may exist (`--path` resumes from this one). */
  readonly shrinkCutShort: boolean;
  /** The commands to replay the failure. */
  readonly replay: readonly string[];
}

export interface FuzzResult {
  readonly seed: number;
  /** Sequences run before the first failure (or all of them). */
  readonly runs: number;
  /** Sequences run while shrinking. */
  readonly shrinks: number;
  readonly steps: number;
  readonly invariantChecks: number;
  readonly crashStates: number;
  /** Transition ids taken (statechart ids plus the oracle's `<phase>:crash`). */
  readonly covered: ReadonlySet<string>;
  /** Transition ids with the number of runs that took each. */
  readonly hits: ReadonlyMap<string, number>;
  /** Statechart transitions taken, of all of them. */
  readonly transitions: { readonly covered: number; readonly total: number; readonly missing: readonly string[] };
  readonly seconds: number;
  /** The time budget ended the search before numRuns. */
  readonly interrupted: boolean;
  /** The fewest operations and the fewest completed cycles of a passing searched sequence (null: none passed). */
  readonly shortestRun: { readonly operations: number; readonly cycles: number } | null;
  readonly failure: FuzzFailure | null;
}

export type { FuzzData, HistoryMin } from './fuzzCommands.ts';

// ------------------------------------------------------------ the runner

/** Any error an implementation throws (rather than answers) becomes an OracleFailure, so that the scenario keeps its records. */
function guarded(sut: SystemUnderTest): SystemUnderTest {
  const wrap = async <T>(what: string, body: () => Promise<T>): Promise<T> => {
    try {
      return await body();
    } catch (error) {
      if (error instanceof OracleFailure) throw error;
      throw new OracleFailure(
        'sut',
        `${sut.name} threw during ${what}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  };
  return {
    name: sut.name,
    features: sut.features,
    create: (geometry) => wrap('create', () => sut.create(geometry)),
    apply: (op) => wrap(op.type, () => sut.apply(op)),
    applyCrashing: (op, crash) => wrap(`${op.type} with a failpoint`, () => sut.applyCrashing(op, crash)),
    state: () => wrap('state', () => sut.state()),
    crash: () => wrap('crash', () => sut.crash()),
    recover: () => wrap('recover', () => sut.recover()),
    close: () => sut.close(),
  };
}

/** Splits a printed path into fast-check's path and the commands' replayPath. */
export function parseFuzzPath(path: string): { path: string; replayPath: string | undefined } {
  const at = path.indexOf('@');
  const fastCheckPath = at < 0 ? path : path.slice(0, at);
  if (!/^\d+(:\d+)*$/.test(fastCheckPath))
    throw new RangeError(
      `fuzz: '${path}' is not a path printed by cowmap fuzz (digits and colons, then @ and the replay path)`,
    );
  // A shrunk counterexample of fc.commands cannot be walked to without knowing which commands ran.
  if (at < 0 && fastCheckPath.includes(':'))
    throw new RangeError(`fuzz: the path '${path}' lacks its replay part ('@' and what follows, as printed)`);
  return { path: fastCheckPath, replayPath: at < 0 ? undefined : path.slice(at + 1) };
}

/** The commands' replayPath, from the counterexample as fast-check prints it (`... /*replayPath="..."*\/`). */
function replayPathOf(counterexample: unknown): string | null {
  const match = /\/\*replayPath=("(?:[^"\\]|\\.)*")\*\/\s*$/.exec(String(counterexample));
  return match === null ? null : (JSON.parse(match[1]!) as string);
}

/** `--mutant NAME ` when the replay arguments name a mutant, so that the printed replay runs it. */
function mutantOf(args: readonly string[]): string {
  const at = args.indexOf('--mutant');
  return at >= 0 && args[at + 1] !== undefined ? `--mutant ${shellQuote(args[at + 1]!)} ` : '';
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const regionSize = options.regionSize ?? fuzzDefaults.regionSize;
  const ioMax = options.ioMax ?? fuzzDefaults.ioMax;
  if (!Number.isInteger(options.regions) || options.regions < 1)
    throw new RangeError('fuzz: regions must be a positive integer');
  const labels = options.labels ?? fuzzDefaults.labels;
  const history = options.historyMin;
  if (
    history !== undefined &&
    (!Number.isInteger(history.operations) ||
      history.operations < 0 ||
      !Number.isInteger(history.cycles) ||
      history.cycles < 0)
  ) {
    throw new RangeError('fuzz: historyMin needs non-negative integer operations and cycles');
  }
  // Lengths are uniform up to commandsMax: half again the history's length keeps a third of the sequences long enough.
  const commandsMax = Math.max(
    options.commandsMax ?? fuzzDefaults.commandsMax,
    Math.ceil(((history?.operations ?? 0) * 3) / 2),
    history?.cycles ?? 0,
  );
  const data = options.data ?? fuzzDefaults.data;
  if (data !== 'labels' && data !== 'bytes')
    throw new RangeError(`fuzz: data must be 'labels' or 'bytes', got '${String(data)}'`);
  if (!Number.isInteger(labels) || labels < 1) throw new RangeError('fuzz: labels must be a positive integer');
  if (!Number.isInteger(commandsMax) || commandsMax < 1)
    throw new RangeError('fuzz: commandsMax must be a positive integer');
  if (!Number.isInteger(regionSize) || regionSize < sectorSize || regionSize % sectorSize !== 0)
    throw new RangeError('fuzz: regionSize must be a positive multiple of 512');
  const geometry: Geometry = { regions: options.regions, regionSize };

  // What the implementation can do decides which crashes are generated.
  const probe = options.makeSut();
  const features = probe.features;
  const sutName = probe.name;
  await probe.close();
  const crashModes: FaultMode[] = [];
  if (options.crashModes !== undefined) {
    crashModes.push(...options.crashModes);
  } else if (features.has('failpoint')) {
    crashModes.push('process');
    if (features.has('power-loss')) crashModes.push('power');
    if (features.has('power-loss') && features.has('torn')) crashModes.push('torn');
  }
  const crashBetween = options.crashBetween ?? true;
  const cycleWeight = cycleWeightFor(history, crashBetween || crashModes.length > 0);
  const generation: Generation = {
    regions: options.regions,
    labels,
    regionSize,
    ioMax,
    crashModes,
    crashBetween,
    data,
    cycleWeight,
    sutName,
  };

  const replay = options.path === undefined ? null : parseFuzzPath(options.path);
  // Unbiased: fast-check's bias favours very short sequences; lengths are uniform in 0..commandsMax.
  const sequences = fc.noBias(
    fc.commands([commandArbitrary(generation)], {
      maxCommands: commandsMax,
      size: 'max',
      ...(replay?.replayPath === undefined ? {} : { replayPath: replay.replayPath }),
    }),
  );

  const totals = { runs: 0, shrinks: 0, steps: 0, invariantChecks: 0, crashStates: 0 };
  let shortestRun: { operations: number; cycles: number } | null = null;
  const hits = new Map<string, number>();
  let failedAt: number | null = null;
  let lastProgress = 0;
  const progress = () => {
    const now = performance.now();
    if (options.onProgress === undefined || now - lastProgress < 200) return;
    lastProgress = now;
    options.onProgress({
      phase: failedAt === null ? 'search' : 'shrink',
      runs: totals.runs,
      shrinks: totals.shrinks,
      steps: totals.steps,
      seconds: seconds(),
    });
  };

  const property = fc.asyncProperty(sequences, async (commands) => {
    const sut = guarded(options.makeSut());
    const oracle = new Oracle(geometry, new ContentBook(regionSize), sut);
    const real = new SequenceRun(oracle, oracle.book);
    let failed = true;
    try {
      await fc.asyncModelRun(async () => {
        await oracle.start();
        return { model: freshModel(regionSize), real };
      }, commands);
      failed = false;
      if (failedAt === null) {
        shortestRun = {
          operations: Math.min(shortestRun?.operations ?? Infinity, real.operations),
          cycles: Math.min(shortestRun?.cycles ?? Infinity, real.cyclesCompleted),
        };
      }
    } finally {
      if (failedAt === null) totals.runs++;
      else totals.shrinks++;
      if (failed && failedAt === null) failedAt = performance.now();
      totals.steps += oracle.stats.steps;
      totals.invariantChecks += oracle.stats.invariantChecks;
      totals.crashStates += oracle.stats.crashStates;
      for (const id of oracle.covered) hits.set(id, (hits.get(id) ?? 0) + 1);
      await sut.close();
      progress();
    }
  });

  // The budgets, checked between runs (a run is never cut short): the search
  // stops at the time budget (or after one run when replaying a path); shrinking
  // a failure found in time has its own budget.
  const timeBudgetMs = options.timeBudgetMs;
  const shrinkBudgetMs = options.shrinkBudgetMs ?? fuzzDefaults.shrinkBudgetMs;
  let stoppedBy: 'time budget' | 'path replayed' | 'shrink budget' | null = null;
  let runsStarted = 0;
  const budgets: fc.Plugin<[Iterable<fc.AsyncCommand<FuzzModel, SequenceRun>>]> = () => ({
    decorateRun: (nestedRun) => (value) => {
      const now = performance.now();
      if (failedAt === null && timeBudgetMs !== undefined && now - started >= timeBudgetMs) stoppedBy = 'time budget';
      else if (failedAt === null && replay !== null && runsStarted >= 1) stoppedBy = 'path replayed';
      else if (failedAt !== null && now - failedAt >= shrinkBudgetMs) stoppedBy = 'shrink budget';
      // The search skips sequences short of the history (a path replay and shrinking take them as they are).
      else if (failedAt === null && replay === null && history !== undefined && shortOfHistory(value[0], history))
        return new fc.PreconditionFailure(false);
      else {
        runsStarted++;
        return nestedRun(value);
      }
      return new fc.PreconditionFailure(true);
    },
  });

  const numRuns = options.numRuns ?? (timeBudgetMs === undefined ? fuzzDefaults.numRuns : runsUnbounded);
  let details: fc.RunDetails<[Iterable<fc.AsyncCommand<FuzzModel, SequenceRun>>]>;
  try {
    details = await fc.check(property, {
      seed: options.seed,
      numRuns,
      // Sequences short of the history are skipped: up to two in three.
      maxSkipsPerRun: 1000,
      plugins: [budgets],
      // A path replay runs the counterexample, and shrinks on from it if it still fails.
      ...(replay === null ? {} : { path: replay.path }),
    });
  } catch (error) {
    // fast-check cannot walk a path generated with other options (regions, labels, ...).
    if (replay === null) throw error;
    throw new RangeError(
      `fuzz: cannot replay path '${options.path}' with seed ${options.seed}: ${errorMessage(error)} (give the same options as the run that printed it)`,
    );
  }

  if (replay !== null && totals.runs === 0) {
    throw new RangeError(
      `fuzz: the path '${options.path}' with seed ${options.seed} leads to no sequence (give the same options as the run that printed it)`,
    );
  }
  let failure: FuzzFailure | null = null;
  if (details.failed && details.counterexample !== null) {
    failure = await saveFailure(
      options,
      generation,
      geometry,
      details.counterexample[0],
      details.counterexamplePath ?? '',
      details.errorInstance,
      replay,
      stoppedBy === 'shrink budget',
    );
  } else if (details.failed && !details.interrupted) {
    throw new Error(
      `fuzz: fast-check failed without a counterexample (${details.interrupted ? 'interrupted' : 'too many skips'})`,
    );
  }

  const transitionIds = allTransitions().map((info) => info.id);
  const missing = transitionIds.filter((id) => !hits.has(id));
  return {
    seed: options.seed,
    runs: totals.runs,
    shrinks: totals.shrinks,
    steps: totals.steps,
    invariantChecks: totals.invariantChecks,
    crashStates: totals.crashStates,
    covered: new Set(hits.keys()),
    hits,
    transitions: { covered: transitionIds.length - missing.length, total: transitionIds.length, missing },
    seconds: seconds(),
    interrupted: stoppedBy === 'time budget',
    shortestRun,
    failure,
  };
}

/** Runs the shortest failing sequence again through runScenario, saves it as a v1 trace and replays the trace. */
async function saveFailure(
  options: FuzzOptions,
  generation: Generation,
  geometry: Geometry,
  commands: Iterable<fc.AsyncCommand<FuzzModel, SequenceRun>>,
  fastCheckPath: string,
  error: unknown,
  replay: { path: string; replayPath: string | undefined } | null,
  shrinkCutShort: boolean,
): Promise<FuzzFailure> {
  // The commands the model lets run, as scenario steps (the model plans them exactly as in the failing run).
  const collected = new SequenceRun(null, new ContentBook(generation.regionSize));
  await fc.asyncModelRun(() => ({ model: freshModel(generation.regionSize), real: collected }), commands);
  const replayPath = replayPathOf(commands) ?? replay?.replayPath ?? null;
  const path = replayPath === null ? fastCheckPath : `${fastCheckPath}@${replayPath}`;

  const book = collected.book;
  const result = await runScenario(guarded(options.makeSut()), geometry, collected.steps, book);
  const message =
    result.failure?.message ??
    `${errorMessage(error)} (the re-run through runScenario passed: the failure did not reproduce)`;
  const differences = result.failure?.differences ?? (error instanceof OracleFailure ? error.differences : []);
  const stepIndex = result.failure?.stepIndex ?? Math.max(0, collected.steps.length - 1);
  const steps = collected.steps.slice(0, stepIndex + 1);

  const dir = options.failuresDir ?? fuzzDefaults.failuresDir;
  mkdirSync(dir, { recursive: true });
  const tracePath = join(dir, `fuzz-${options.seed}.jsonl`);
  const fuzzArgs = [
    '--seed',
    String(options.seed),
    '--path',
    path,
    '--regions',
    String(generation.regions),
    '--data',
    generation.data,
    ...(generation.data === 'labels' ? ['--labels', String(generation.labels)] : []),
    '--commands-max',
    String(options.commandsMax ?? fuzzDefaults.commandsMax),
    '--region-size',
    String(generation.regionSize),
    '--io-max',
    String(generation.ioMax),
    '--crash-modes',
    generation.crashModes.length === 0 ? 'none' : generation.crashModes.join(','),
    '--crash-between',
    generation.crashBetween ? 'yes' : 'no',
    ...(options.historyMin === undefined
      ? []
      : [
          '--history-operations',
          String(options.historyMin.operations),
          '--history-cycles',
          String(options.historyMin.cycles),
        ]),
    ...(options.replayArgs ?? []),
  ];
  const failing = collected.steps[stepIndex];
  const failingStep =
    failing === undefined ? 'creating the volume' : `step ${stepIndex + 1} ('${describeScenarioStep(failing, book)}')`;
  const mutantArgs = mutantOf(options.replayArgs ?? []);
  const replayCommands = options.replayCommands?.(tracePath, path) ?? [
    `npx cowmap replay ${mutantArgs}${shellQuote(tracePath)}`,
    `npx cowmap fuzz ${fuzzArgs.map(shellQuote).join(' ')}`,
  ];
  const comments = [
    `Found by cowmap fuzz (fast-check command sequences) on ${generation.sutName}.`,
    `seed: ${options.seed}`,
    `path: ${path}`,
    `The shortest failing sequence${shrinkCutShort ? ' found before the shrink budget ran out' : ''}: ${steps.length} steps; ${failingStep} fails:`,
    ...message.split('\n').map((line) => `  ${line}`),
    ...differences.map((d) => `  ${d.field}: expected ${d.expected}, observed ${d.observed}`),
    ...(options.replayCommands === undefined
      ? [
          'Replay this trace (cowmap replay runs the model beside the reference implementation):',
          `  ${replayCommands[0]}`,
          'Run this counterexample again through fast-check (same options):',
          `  ${replayCommands[1]}`,
        ]
      : [
          'Replay this failure (the trace, then the counterexample through fast-check, shrinking on):',
          ...replayCommands.map((command) => `  ${command}`),
        ]),
  ];
  const firstLine = message.split('\n')[0]!;
  const trace = scenarioTrace(geometry, result.records, `fuzz failure: ${firstLine}`, comments, options.seed);
  writeFileSync(tracePath, trace);

  // The saved trace must fail on its own, on a fresh implementation.
  const replayed = await replayTrace(readTrace(readFileSync(tracePath, 'utf8'), tracePath), guarded(options.makeSut()));
  return {
    message,
    differences,
    path,
    steps,
    stepIndex,
    tracePath,
    trace,
    reproduced: replayed.failure !== null,
    shrinkCutShort,
    replay: replayCommands,
  };
}
