// fast-check command sequences: random sequences of writes, swaps, transfers (of
// current and of non-current regions), completions (early and drained), reads,
// crashes between operations and crashes inside an operation after its k-th I/O
// call (process, power and torn), each followed by a recovery, and a kill inside
// an operation whose recovery is followed by a power loss inside the next one,
// run against an implementation through the oracle.
//
// The design, in fast-check's own style: ONE small command class (StepCommand)
// holding a scenario step, or a crash and the recovery that follows it. The
// fast-check model is only `{ crashed }` (a crash inside an operation needs a
// running volume); the real judge is the oracle inside `real`, which steps the
// statechart beside the implementation, compares their whole states, checks every
// invariant and judges every recovered state. Rejections are generated on purpose
// and the oracle checks that the implementation gives the model's code.
//
// On a failure fast-check shrinks the sequence; the shortest failing one is run
// again through runScenario, which records it, and saved as a v1 trace in
// traces/failures/fuzz-<seed>.jsonl with the seed, the path, the failure and the
// commands that replay it.
//
// Replaying a fast-check counterexample of `fc.commands` needs, besides the seed
// and the shrink path, the commands' replayPath (which commands ran at each shrink
// step): the path this module prints is `<fast-check path>@<replayPath>`.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { allTransitions } from '../model/transitions.ts';
import type { Geometry } from '../model/types.ts';
import { Oracle, OracleFailure } from './oracle.ts';
import type { Difference } from './oracle.ts';
import { replayTrace } from './replay.ts';
import { describeScenarioStep, runScenario, scenarioTrace } from './scenario.ts';
import type { ScenarioStep } from './scenario.ts';
import type { CrashRequest, SutOp, SystemUnderTest } from './sut.ts';
import { ContentBook, labelBytes } from './trace/content.ts';
import { defaultNames, readTrace } from './trace/reader.ts';

export const fuzzDefaults = {
  regions: 4,
  labels: 3,
  commandsMax: 50,
  regionSize: 512,
  ioMax: 12,
  numRuns: 100,
  failuresDir: join('traces', 'failures'),
  /** Shrinking stops after this long (the counterexample found so far is kept). */
  shrinkBudgetMs: 120_000,
} as const;

const sectorSize = 512;
const runsUnbounded = 1_000_000_000;

export type FuzzData = 'labels' | 'bytes';

export interface HistoryMin {
  readonly operations: number;
  readonly cycles: number;
}

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
  readonly crashModes?: readonly CrashMode[];
  /** Whether to generate crashes between operations (default true). */
  readonly crashBetween?: boolean;
  /** Where a failing sequence is saved (default traces/failures). */
  readonly failuresDir?: string;
  /** Extra arguments for the printed `cowmap fuzz` replay command (e.g. `--mutant NAME`). */
  readonly replayArgs?: readonly string[];
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
  readonly failure: FuzzFailure | null;
}

// ------------------------------------------------------------ the commands

interface FuzzModel {
  crashed: boolean;
}

/**
 * The system side of one sequence: the oracle of the run (the model beside the
 * implementation) and the steps run so far. Without an oracle it only collects
 * the steps (to turn a counterexample back into scenario steps).
 */
class SequenceRun {
  readonly steps: ScenarioStep[] = [];

  constructor(readonly oracle: Oracle | null) {}

  /** One step exactly as runScenario runs it (same oracle calls, same labels). */
  async run(step: ScenarioStep): Promise<void> {
    const index = this.steps.length;
    this.steps.push(step);
    const oracle = this.oracle;
    if (oracle === null) return;
    const label = `step ${index + 1} '${describeScenarioStep(step, oracle.book)}'`;
    if (step.kind === 'crashInside') await oracle.stepCrashing(step.op, step.crash, label);
    else await oracle.step(step.kind === 'op' ? step.op : { type: step.kind }, label, null);
  }
}

/** A scenario step, or a crash and the recovery that follows it. */
class StepCommand implements fc.AsyncCommand<FuzzModel, SequenceRun> {
  constructor(
    readonly steps: readonly ScenarioStep[],
    /** Names the data by its label (only when fast-check prints a counterexample). */
    private readonly book: ContentBook,
  ) {}

  check(model: Readonly<FuzzModel>): boolean {
    // A crash inside an operation needs a running volume (Oracle.stepCrashing).
    return !(model.crashed && this.steps[0]!.kind === 'crashInside');
  }

  async run(model: FuzzModel, real: SequenceRun): Promise<void> {
    for (const step of this.steps) {
      await real.run(step);
      if (step.kind === 'crash' || step.kind === 'crashInside') model.crashed = true;
      else if (step.kind === 'recover') model.crashed = false;
    }
  }

  toString(): string {
    return this.steps.map((step) => describeScenarioStep(step, this.book)).join('; ');
  }
}

interface Generation {
  readonly regions: number;
  readonly labels: number;
  readonly regionSize: number;
  readonly ioMax: number;
  readonly crashModes: readonly CrashMode[];
  readonly crashBetween: boolean;
  readonly sutName: string;
}

export type CrashMode = 'process' | 'power' | 'torn';

/**
 * The label of the k-th value of a region: `A1`, `B3`, ... Above one sector it is
 * padded with dots to the end of the first sector and repeated in the second, so
 * that every value differs from every other in both sectors.
 */
export function fuzzLabel(names: readonly string[], region: number, value: number, regionSize: number): string {
  const base = `${names[region] ?? region}${value}`;
  return regionSize > sectorSize ? base.padEnd(sectorSize, '.') + base : base;
}

/** A book that knows every label of the run, for readable messages and traces. */
function bookFor(generation: Generation): ContentBook {
  const book = new ContentBook(generation.regionSize);
  const names = defaultNames(generation.regions);
  for (let region = 0; region < generation.regions; region++) {
    for (let value = 1; value <= generation.labels; value++) book.addLabel(fuzzLabel(names, region, value, generation.regionSize));
  }
  return book;
}

/** One arbitrary for every command, weighted: the system's operations, then crashes. */
function commandArbitrary(generation: Generation): fc.Arbitrary<StepCommand> {
  const { regions, labels, regionSize, ioMax } = generation;
  const names = defaultNames(regions);
  const book = bookFor(generation);
  const bytes = new Map<string, Uint8Array>();
  const dataOf = (region: number, value: number): Uint8Array => {
    const label = fuzzLabel(names, region, value, regionSize);
    let data = bytes.get(label);
    if (data === undefined) {
      data = labelBytes(label, regionSize)!;
      bytes.set(label, data);
    }
    return data;
  };
  const region = fc.integer({ min: 0, max: regions - 1 });
  const write = fc.tuple(region, fc.integer({ min: 1, max: labels })).map(([r, value]): SutOp => ({ type: 'write', region: r, data: dataOf(r, value) }));
  const transfer = region.map((r): SutOp => ({ type: 'transfer', region: r }));
  const startCycle = fc.constant<SutOp>({ type: 'startCycle' });
  const completeCycle = fc.constant<SutOp>({ type: 'completeCycle' });
  // Arguments the model judges before the state: E_RANGE, then E_SIZE.
  const badRequest = fc.oneof(
    fc.constant<SutOp>({ type: 'write', region: regions, data: dataOf(0, 1) }),
    fc.constant<SutOp>({ type: 'transfer', region: regions }),
    region.map((r): SutOp => ({ type: 'write', region: r, data: dataOf(r, 1).subarray(0, 8) })),
  );
  const read = fc.tuple(region, fc.constantFrom<('primary' | 'secondary')[]>('primary', 'secondary')).map(([r, volume]): SutOp => ({ type: 'read', region: r, volume }));
  const badRead = fc.constant<SutOp>({ type: 'read', region: regions, volume: 'primary' });
  // A read is not a step of trace format v1, so a crash goes only inside the others.
  const mutating = fc.oneof(
    { arbitrary: write, weight: 4 },
    { arbitrary: transfer, weight: 3 },
    { arbitrary: startCycle, weight: 2 },
    { arbitrary: completeCycle, weight: 2 },
    { arbitrary: badRequest, weight: 1 },
  );
  const command = (steps: ScenarioStep[]) => new StepCommand(steps, book);
  const op = (arbitrary: fc.Arbitrary<SutOp>) => arbitrary.map((sutOp) => command([{ kind: 'op', op: sutOp }]));
  const choices: fc.WeightedArbitrary<StepCommand>[] = [
    { arbitrary: op(write), weight: 8 },
    { arbitrary: op(transfer), weight: 6 },
    { arbitrary: op(startCycle), weight: 3 },
    { arbitrary: op(completeCycle), weight: 3 },
    { arbitrary: op(fc.oneof(read, read, read, badRead)), weight: 2 },
    { arbitrary: op(badRequest), weight: 1 },
  ];
  if (generation.crashBetween) {
    choices.push(
      { arbitrary: fc.constant(command([{ kind: 'crash' }, { kind: 'recover' }])), weight: 2 },
      // A lone crash leaves the volume down for a while (every op E_PHASE); a lone recover ends it.
      { arbitrary: fc.constant(command([{ kind: 'crash' }])), weight: 1 },
      { arbitrary: fc.constant(command([{ kind: 'recover' }])), weight: 1 },
    );
  }
  if (generation.crashModes.length > 0) {
    // After the k-th I/O call, k in 0..ioMax; the power-loss seed picks what unsynced data survives.
    const crash = fc
      .tuple(fc.integer({ min: 0, max: ioMax }), fc.constantFrom(...generation.crashModes), fc.integer({ min: 0, max: 0xffff }))
      .map(([afterIo, mode, seed]): CrashRequest => (mode === 'process' ? { afterIo, mode, seed: 0, torn: false } : { afterIo, mode: 'power', seed, torn: mode === 'torn' }));
    choices.push({ arbitrary: fc.tuple(mutating, crash).map(([sutOp, request]) => command([{ kind: 'crashInside', op: sutOp, crash: request }, { kind: 'recover' }])), weight: 5 });
    const powerModes = generation.crashModes.filter((mode) => mode !== 'process');
    if (generation.crashModes.includes('process') && powerModes.length > 0) {
      // A kill leaves unsynced writes in the page cache, and recovery inherits them
      // (CrashStorage.handOverTo): a power loss inside the next operation can take
      // back what a recovery read there without syncing it. Apart, the two crashes
      // rarely meet with no sync of the same file in between.
      const kill = fc.integer({ min: 0, max: ioMax }).map((afterIo): CrashRequest => ({ afterIo, mode: 'process', seed: 0, torn: false }));
      // Before the operation's first durable call: nothing of it can sync the inherited writes first.
      const powerLoss = fc
        .tuple(fc.constantFrom(...powerModes), fc.integer({ min: 0, max: 0xffff }))
        .map(([mode, seed]): CrashRequest => ({ afterIo: 0, mode: 'power', seed, torn: mode === 'torn' }));
      // The power loss goes inside a write: a write is allowed in every phase after a
      // recovery and makes at least one durable call, so the crash at call 0 always
      // happens (inside a rejected operation it never would, and the oracle's crash
      // would be a second kill).
      const killThenPowerLoss = fc.tuple(mutating, kill, write, powerLoss).map(([killed, killRequest, lost, lossRequest]) =>
        command([
          { kind: 'crashInside', op: killed, crash: killRequest },
          { kind: 'recover' },
          { kind: 'crashInside', op: lost, crash: lossRequest },
          { kind: 'recover' },
        ]),
      );
      choices.push({ arbitrary: killThenPowerLoss, weight: 2 });
    }
  }
  return fc.oneof(...choices);
}

// ------------------------------------------------------------ the runner

/** Any error an implementation throws (rather than answers) becomes an OracleFailure, so that the scenario keeps its records. */
function guarded(sut: SystemUnderTest): SystemUnderTest {
  const wrap = async <T>(what: string, body: () => Promise<T>): Promise<T> => {
    try {
      return await body();
    } catch (error) {
      if (error instanceof OracleFailure) throw error;
      throw new OracleFailure('sut', `${sut.name} threw during ${what}: ${error instanceof Error ? error.message : String(error)}`);
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
  if (!/^\d+(:\d+)*$/.test(fastCheckPath)) throw new RangeError(`fuzz: '${path}' is not a path printed by cowmap fuzz (digits and colons, then @ and the replay path)`);
  // A shrunk counterexample of fc.commands cannot be walked to without knowing which commands ran.
  if (at < 0 && fastCheckPath.includes(':')) throw new RangeError(`fuzz: the path '${path}' lacks its replay part ('@' and what follows, as printed)`);
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

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const regionSize = options.regionSize ?? fuzzDefaults.regionSize;
  const ioMax = options.ioMax ?? fuzzDefaults.ioMax;
  if (!Number.isInteger(options.regions) || options.regions < 1) throw new RangeError('fuzz: regions must be a positive integer');
  const labels = options.labels ?? fuzzDefaults.labels;
  const commandsMax = options.commandsMax ?? fuzzDefaults.commandsMax;
  if (!Number.isInteger(labels) || labels < 1) throw new RangeError('fuzz: labels must be a positive integer');
  if (!Number.isInteger(commandsMax) || commandsMax < 1) throw new RangeError('fuzz: commandsMax must be a positive integer');
  if (!Number.isInteger(regionSize) || regionSize < sectorSize || regionSize % sectorSize !== 0) throw new RangeError('fuzz: regionSize must be a positive multiple of 512');
  const geometry: Geometry = { regions: options.regions, regionSize };

  // What the implementation can do decides which crashes are generated.
  const probe = options.makeSut();
  const features = probe.features;
  const sutName = probe.name;
  await probe.close();
  const crashModes: CrashMode[] = [];
  if (options.crashModes !== undefined) {
    crashModes.push(...options.crashModes);
  } else if (features.has('failpoint')) {
    crashModes.push('process');
    if (features.has('power-loss')) crashModes.push('power');
    if (features.has('power-loss') && features.has('torn')) crashModes.push('torn');
  }
  const generation: Generation = { regions: options.regions, labels, regionSize, ioMax, crashModes, crashBetween: options.crashBetween ?? true, sutName };

  const replay = options.path === undefined ? null : parseFuzzPath(options.path);
  // Unbiased: fast-check's bias favours very short sequences; lengths are uniform in 0..commandsMax.
  const sequences = fc.noBias(fc.commands([commandArbitrary(generation)], {
    maxCommands: commandsMax,
    size: 'max',
    ...(replay?.replayPath === undefined ? {} : { replayPath: replay.replayPath }),
  }));

  const totals = { runs: 0, shrinks: 0, steps: 0, invariantChecks: 0, crashStates: 0 };
  const hits = new Map<string, number>();
  let failedAt: number | null = null;
  let lastProgress = 0;
  const progress = () => {
    const now = performance.now();
    if (options.onProgress === undefined || now - lastProgress < 200) return;
    lastProgress = now;
    options.onProgress({ phase: failedAt === null ? 'search' : 'shrink', runs: totals.runs, shrinks: totals.shrinks, steps: totals.steps, seconds: seconds() });
  };

  const property = fc.asyncProperty(sequences, async (commands) => {
    const sut = guarded(options.makeSut());
    const oracle = new Oracle(geometry, bookFor(generation), sut);
    const real = new SequenceRun(oracle);
    let failed = true;
    try {
      await fc.asyncModelRun(async () => {
        await oracle.start();
        return { model: { crashed: false }, real };
      }, commands);
      failed = false;
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
      plugins: [budgets],
      // A path replay runs the counterexample, and shrinks on from it if it still fails.
      ...(replay === null ? {} : { path: replay.path }),
    });
  } catch (error) {
    // fast-check cannot walk a path generated with other options (regions, labels, ...).
    if (replay === null) throw error;
    throw new RangeError(`fuzz: cannot replay path '${options.path}' with seed ${options.seed}: ${errorMessage(error)} (give the same options as the run that printed it)`);
  }

  if (replay !== null && totals.runs === 0) {
    throw new RangeError(`fuzz: the path '${options.path}' with seed ${options.seed} leads to no sequence (give the same options as the run that printed it)`);
  }
  let failure: FuzzFailure | null = null;
  if (details.failed && details.counterexample !== null) {
    failure = await saveFailure(options, generation, geometry, details.counterexample[0], details.counterexamplePath ?? '', details.errorInstance, replay, stoppedBy === 'shrink budget');
  } else if (details.failed && !details.interrupted) {
    throw new Error(`fuzz: fast-check failed without a counterexample (${details.interrupted ? 'interrupted' : 'too many skips'})`);
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
  // The commands the model lets run, as scenario steps.
  const collected = new SequenceRun(null);
  await fc.asyncModelRun(() => ({ model: { crashed: false }, real: collected }), commands);
  const replayPath = replayPathOf(commands) ?? replay?.replayPath ?? null;
  const path = replayPath === null ? fastCheckPath : `${fastCheckPath}@${replayPath}`;

  const book = bookFor(generation);
  const result = await runScenario(guarded(options.makeSut()), geometry, collected.steps, book);
  const message = result.failure?.message ?? `${errorMessage(error)} (the re-run through runScenario passed: the failure did not reproduce)`;
  const differences = result.failure?.differences ?? (error instanceof OracleFailure ? error.differences : []);
  const stepIndex = result.failure?.stepIndex ?? Math.max(0, collected.steps.length - 1);
  const steps = collected.steps.slice(0, stepIndex + 1);

  const dir = options.failuresDir ?? fuzzDefaults.failuresDir;
  mkdirSync(dir, { recursive: true });
  const tracePath = join(dir, `fuzz-${options.seed}.jsonl`);
  const fuzzArgs = [
    '--seed', String(options.seed),
    '--path', path,
    '--regions', String(generation.regions),
    '--labels', String(generation.labels),
    '--commands-max', String(options.commandsMax ?? fuzzDefaults.commandsMax),
    '--region-size', String(generation.regionSize),
    '--io-max', String(generation.ioMax),
    ...(options.replayArgs ?? []),
  ];
  const failing = collected.steps[stepIndex];
  const failingStep = failing === undefined ? 'creating the volume' : `step ${stepIndex + 1} ('${describeScenarioStep(failing, book)}')`;
  const mutantArgs = mutantOf(options.replayArgs ?? []);
  const replayCommands = [`npx cowmap replay ${mutantArgs}${shellQuote(tracePath)}`, `npx cowmap fuzz ${fuzzArgs.map(shellQuote).join(' ')}`];
  const comments = [
    `Found by cowmap fuzz (fast-check command sequences) on ${generation.sutName}.`,
    `seed: ${options.seed}`,
    `path: ${path}`,
    `The shortest failing sequence${shrinkCutShort ? ' found before the shrink budget ran out' : ''}: ${steps.length} steps; ${failingStep} fails:`,
    ...message.split('\n').map((line) => `  ${line}`),
    ...differences.map((d) => `  ${d.field}: expected ${d.expected}, observed ${d.observed}`),
    'Replay this trace (cowmap replay runs the model beside the reference implementation):',
    `  ${replayCommands[0]}`,
    'Run this counterexample again through fast-check (same options):',
    `  ${replayCommands[1]}`,
  ];
  const firstLine = message.split('\n')[0]!;
  const trace = scenarioTrace(geometry, result.records, `fuzz failure: ${firstLine}`, comments, options.seed);
  writeFileSync(tracePath, trace);

  // The saved trace must fail on its own, on a fresh implementation.
  const replayed = await replayTrace(readTrace(readFileSync(tracePath, 'utf8'), tracePath), guarded(options.makeSut()));
  return { message, differences, path, steps, stepIndex, tracePath, trace, reproduced: replayed.failure !== null, shrinkCutShort, replay: replayCommands };
}
