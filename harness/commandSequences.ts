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
// (PlannedCommand) holding planned steps, made concrete at run time from a small
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
import { allTransitions } from '../model/transitions.ts';
import type { Geometry } from '../model/types.ts';
import { outOfRangeRegions, regionArbitrary } from './geometry.ts';
import { contentRecipeArbitrary, RunContents } from './regionData.ts';
import type { ContentRecipe } from './regionData.ts';
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
  data: 'bytes' as FuzzData,
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
  /** The fewest operations and the fewest completed cycles of a passing searched sequence (null: none passed). */
  readonly shortestRun: { readonly operations: number; readonly cycles: number } | null;
  readonly failure: FuzzFailure | null;
}

// ------------------------------------------------------------ the commands

/**
 * What fast-check keeps of the system, to plan commands: whether the volume is
 * down, and an over-estimate of the maps: a superset of C and of X, the regions
 * of C known to be sent, and the phase where it is known. A crash inside an operation
 * makes the system's outcome uncertain (the swap may or may not have happened),
 * so the sets only grow there and the phase becomes 'unknown'; a cycle command
 * then still drains the cycle by sending every region of the superset (the
 * others are answered E_NOT_CURRENT, which the oracle checks too). It only
 * plans: the oracle judges every step against the real model.
 */
interface FuzzModel {
  crashed: boolean;
  phase: 'idle' | 'replicating' | 'unknown';
  /** Contains C. */
  readonly current: Set<number>;
  currentExact: boolean;
  /** Contains X. */
  readonly next: Set<number>;
  nextExact: boolean;
  /** Regions transferred since the swap or the last recovery while the phase was known to be replicating: those of C among them were sent. */
  readonly sent: Set<number>;
  /** What the run wrote, for near-copies. */
  readonly contents: RunContents;
}

function freshModel(regionSize: number): FuzzModel {
  return { crashed: false, phase: 'idle', current: new Set(), currentExact: true, next: new Set(), nextExact: true, sent: new Set(), contents: new RunContents(regionSize) };
}

function replaceSet(set: Set<number>, values: Iterable<number>): void {
  const copy = [...values];
  set.clear();
  for (const value of copy) set.add(value);
}

function isSubset(small: ReadonlySet<number>, large: ReadonlySet<number>): boolean {
  for (const value of small) if (!large.has(value)) return false;
  return true;
}

/** The swap, seen from the model: certain from idle, a maybe from an unknown phase. */
function trackSwap(model: FuzzModel, certain: boolean): void {
  if (certain) {
    replaceSet(model.current, model.next);
    model.currentExact = model.nextExact;
    model.next.clear();
    model.nextExact = true;
  } else {
    for (const region of model.next) model.current.add(region);
    model.currentExact = false;
    model.nextExact = false;
  }
  model.sent.clear();
}

/** An operation that ran to its answer (accepted or rejected). */
function trackOp(model: FuzzModel, op: SutOp, regions: number, regionSize: number): void {
  if (model.crashed) return; // E_PHASE: nothing changes
  switch (op.type) {
    case 'write':
      if (op.region >= 0 && op.region < regions && op.data.length === regionSize) model.next.add(op.region);
      return;
    case 'startCycle':
      if (model.phase !== 'replicating') trackSwap(model, model.phase === 'idle');
      model.phase = 'replicating';
      return;
    case 'transfer':
      if (model.phase === 'replicating' && model.current.has(op.region)) model.sent.add(op.region);
      return;
    case 'completeCycle':
      if (model.phase === 'replicating' && isSubset(model.current, model.sent)) {
        model.phase = 'idle';
        model.current.clear();
        model.currentExact = true;
        model.sent.clear();
      } else if (model.phase === 'replicating' && !model.currentExact) {
        model.phase = 'unknown';
      }
      return;
    case 'read':
      return;
  }
}

/** An operation with a crash inside: whatever of it reached the disk may or may not survive. */
function trackCrashInside(model: FuzzModel, op: SutOp, regions: number, regionSize: number): void {
  if (op.type === 'write' && op.region >= 0 && op.region < regions && op.data.length === regionSize && !model.next.has(op.region)) {
    model.next.add(op.region);
    model.nextExact = false;
  } else if (op.type === 'startCycle' && model.phase !== 'replicating') {
    trackSwap(model, false);
    model.phase = 'unknown';
  } else if (op.type === 'completeCycle' && model.phase === 'replicating' && (!model.currentExact || isSubset(model.current, model.sent))) {
    model.currentExact = false;
    model.phase = 'unknown';
  }
  model.crashed = true;
}

function trackStep(model: FuzzModel, step: ScenarioStep, generation: Generation): void {
  switch (step.kind) {
    case 'op':
      trackOp(model, step.op, generation.regions, generation.regionSize);
      return;
    case 'crashInside':
      trackCrashInside(model, step.op, generation.regions, generation.regionSize);
      return;
    case 'crash':
      model.crashed = true;
      return;
    case 'recover':
      if (model.crashed) model.sent.clear();
      model.crashed = false;
      return;
  }
}

/** What a write carries: a label (data 'labels'), or a recipe made into bytes at run time against what the run wrote. */
type DataPlan =
  | { readonly label: string; readonly bytes: Uint8Array }
  | { readonly recipe: ContentRecipe; readonly size: 'region' | number };

/** An operation as planned: fixed, a write whose bytes come at run time, or a transfer of a region the model holds current. */
type OpPlan =
  | { readonly kind: 'fixed'; readonly op: SutOp }
  | { readonly kind: 'write'; readonly region: number; readonly data: DataPlan }
  | { readonly kind: 'transferCurrent'; readonly pick: number; readonly otherwise: number };

type StepPlan =
  | { readonly kind: 'op'; readonly op: OpPlan }
  | { readonly kind: 'crash' }
  | { readonly kind: 'recover' }
  | { readonly kind: 'crashInside'; readonly op: OpPlan; readonly crash: CrashRequest }
  /** startCycle unless the model knows one runs, a transfer of every region the model holds current, completeCycle. */
  | { readonly kind: 'cycle' };

/** Content for the book: a label (traces write it as such) or a name (messages only). */
type Naming = { readonly label: string } | { readonly name: string } | null;

/**
 * The system side of one sequence: the oracle of the run (the model beside the
 * implementation), the book that names its contents, and the steps run so far.
 * Without an oracle it only collects the steps (to turn a counterexample back
 * into scenario steps).
 */
class SequenceRun {
  readonly steps: ScenarioStep[] = [];
  operations = 0;
  cyclesCompleted = 0;

  constructor(
    readonly oracle: Oracle | null,
    readonly book: ContentBook,
  ) {}

  /** One step exactly as runScenario runs it (same oracle calls, same labels). */
  async run(step: ScenarioStep, naming: Naming): Promise<void> {
    const index = this.steps.length;
    this.steps.push(step);
    this.operations++;
    if (naming !== null && step.kind !== 'crash' && step.kind !== 'recover' && step.op.type === 'write') {
      if ('label' in naming) this.book.addLabel(naming.label);
      else this.book.addNamed(step.op.data, naming.name);
    }
    const oracle = this.oracle;
    if (oracle === null) return;
    const label = `step ${index + 1} '${describeScenarioStep(step, oracle.book)}'`;
    if (step.kind === 'crashInside') {
      await oracle.stepCrashing(step.op, step.crash, label);
      return;
    }
    const reply = await oracle.step(step.kind === 'op' ? step.op : { type: step.kind }, label, null);
    if (step.kind === 'op' && step.op.type === 'completeCycle' && reply.ok) this.cyclesCompleted++;
  }
}

/** A command: its steps are planned at generation and made at run time from the model (the bytes written, the regions a cycle sends). */
class PlannedCommand implements fc.AsyncCommand<FuzzModel, SequenceRun> {
  /** The steps of the last run, for fast-check's report of a counterexample. */
  private made: string[] = [];

  constructor(
    readonly plans: readonly StepPlan[],
    private readonly generation: Generation,
  ) {}

  get isCycle(): boolean {
    return this.plans.some((plan) => plan.kind === 'cycle');
  }

  check(): boolean {
    return true;
  }

  async run(model: FuzzModel, real: SequenceRun): Promise<void> {
    this.made = [];
    const take = async (step: ScenarioStep, naming: Naming = null) => {
      await real.run(step, naming);
      trackStep(model, step, this.generation);
      this.made.push(describeScenarioStep(step, real.book));
    };
    for (const plan of this.plans) {
      // A crash inside an operation needs a running volume (Oracle.stepCrashing), and so does a cycle.
      if ((plan.kind === 'crashInside' || plan.kind === 'cycle') && model.crashed) await take({ kind: 'recover' });
      switch (plan.kind) {
        case 'crash':
        case 'recover':
          await take({ kind: plan.kind });
          break;
        case 'op': {
          const { op, naming } = makeOp(plan.op, model, this.generation);
          await take({ kind: 'op', op }, naming);
          break;
        }
        case 'crashInside': {
          const { op, naming } = makeOp(plan.op, model, this.generation);
          await take({ kind: 'crashInside', op, crash: plan.crash }, naming);
          break;
        }
        case 'cycle': {
          if (model.phase !== 'replicating') await take({ kind: 'op', op: { type: 'startCycle' } });
          // Bounded by the regions: the superset of C is a set of region indices.
          for (const region of [...model.current].sort((a, b) => a - b)) await take({ kind: 'op', op: { type: 'transfer', region } });
          await take({ kind: 'op', op: { type: 'completeCycle' } });
          break;
        }
      }
    }
  }

  toString(): string {
    if (this.made.length > 0) return this.made.join('; ');
    return this.plans.map((plan) => plan.kind).join('; ');
  }
}

/** The operation a plan makes in the model's present state, with the name of what it writes. */
function makeOp(plan: OpPlan, model: FuzzModel, generation: Generation): { op: SutOp; naming: Naming } {
  switch (plan.kind) {
    case 'fixed':
      return { op: plan.op, naming: null };
    case 'transferCurrent': {
      const current = [...model.current].sort((a, b) => a - b);
      const region = current.length === 0 ? plan.otherwise : current[plan.pick % current.length]!;
      return { op: { type: 'transfer', region }, naming: null };
    }
    case 'write': {
      const data = plan.data;
      if ('label' in data) return { op: { type: 'write', region: plan.region, data: data.bytes }, naming: { label: data.label } };
      const content = model.contents.make(data.recipe, plan.region);
      if (data.size !== 'region') {
        const wrong = new Uint8Array(data.size);
        wrong.set(content.bytes.subarray(0, data.size));
        return { op: { type: 'write', region: plan.region, data: wrong }, naming: null };
      }
      if (plan.region >= 0 && plan.region < generation.regions) model.contents.noteWritten(plan.region, content);
      return { op: { type: 'write', region: plan.region, data: content.bytes }, naming: { name: content.name } };
    }
  }
}

interface Generation {
  readonly regions: number;
  readonly labels: number;
  readonly regionSize: number;
  readonly ioMax: number;
  readonly crashModes: readonly CrashMode[];
  readonly crashBetween: boolean;
  readonly data: FuzzData;
  /** Weight of the cycle command among the others (more when a history asks for many cycles). */
  readonly cycleWeight: number;
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

/** The operations' arbitraries, over the whole volume. */
function opArbitraries(generation: Generation) {
  const { regions, labels, regionSize } = generation;
  const names = defaultNames(regions);
  type Labelled = { readonly label: string; readonly bytes: Uint8Array };
  const labelData = new Map<string, Labelled>();
  const labelled = (region: number, value: number): Labelled => {
    const label = fuzzLabel(names, region, value, regionSize);
    let data = labelData.get(label);
    if (data === undefined) {
      data = { label, bytes: labelBytes(label, regionSize)! };
      labelData.set(label, data);
    }
    return data;
  };
  const region = regionArbitrary(regions);
  const outside = fc.constantFrom(...outOfRangeRegions(regions));
  const write =
    generation.data === 'labels'
      ? fc.tuple(region, fc.integer({ min: 1, max: labels })).map(([r, value]): OpPlan => ({ kind: 'write', region: r, data: labelled(r, value) }))
      : fc.tuple(region, contentRecipeArbitrary()).map(([r, recipe]): OpPlan => ({ kind: 'write', region: r, data: { recipe, size: 'region' } }));
  const fixed = (op: SutOp): OpPlan => ({ kind: 'fixed', op });
  const transfer = region.map((r) => fixed({ type: 'transfer', region: r }));
  // Biased to the regions the model holds current: a cycle can drain across a large volume.
  const transferCurrent = fc.tuple(fc.nat({ max: 1 << 16 }), region).map(([pick, otherwise]): OpPlan => ({ kind: 'transferCurrent', pick, otherwise }));
  const startCycle = fc.constant(fixed({ type: 'startCycle' }));
  const completeCycle = fc.constant(fixed({ type: 'completeCycle' }));
  // Arguments the model judges before the state: E_RANGE, then E_SIZE (one byte short, one byte long).
  const wrongSize = fc.constantFrom(regionSize - 1, regionSize + 1);
  const badWrite =
    generation.data === 'labels'
      ? fc.tuple(region, wrongSize).map(([r, size]): OpPlan => {
          const bytes = new Uint8Array(size);
          bytes.set(labelled(r, 1).bytes.subarray(0, size));
          return fixed({ type: 'write', region: r, data: bytes });
        })
      : fc.tuple(region, contentRecipeArbitrary(), wrongSize).map(([r, recipe, size]): OpPlan => ({ kind: 'write', region: r, data: { recipe, size } }));
  const badRequest = fc.oneof(
    fc.tuple(outside, fc.integer({ min: 1, max: labels })).map(([r]): OpPlan => ({ kind: 'write', region: r, data: generation.data === 'labels' ? labelled(0, 1) : { recipe: { kind: 'random', seed: 0 }, size: 'region' } })),
    outside.map((r) => fixed({ type: 'transfer', region: r })),
    badWrite,
  );
  const read = fc.tuple(region, fc.constantFrom<('primary' | 'secondary')[]>('primary', 'secondary')).map(([r, volume]) => fixed({ type: 'read', region: r, volume }));
  const badRead = outside.map((r) => fixed({ type: 'read', region: r, volume: 'primary' }));
  return { region, write, transfer, transferCurrent, startCycle, completeCycle, badRequest, read, badRead };
}

/** A new command for every sequence (a command remembers the steps of its last run). */
function fresh(make: () => PlannedCommand): fc.Arbitrary<PlannedCommand> {
  return fc.constant(null).map(make);
}

/** Weights of the commands other than a cycle, without crashes and with every kind of crash (see commandArbitrary). */
const otherWeights = { noCrashes: 23, allCrashes: 34 } as const;

/**
 * The cycle command's weight: 2, or enough that a sequence of the history's
 * length holds about twice its cycles.
 */
function cycleWeightFor(history: HistoryMin | undefined, crashes: boolean): number {
  if (history === undefined || history.cycles === 0) return 2;
  const others = crashes ? otherWeights.allCrashes : otherWeights.noCrashes;
  const share = Math.min(0.3, (2 * history.cycles) / Math.max(history.operations, 1));
  return Math.max(2, Math.ceil((share * others) / (1 - share)));
}

/** The command inside fast-check's wrapper (fast-check runs commands wrapped; the wrapper keeps it as `cmd`). */
function plannedOf(command: unknown): PlannedCommand | null {
  if (command instanceof PlannedCommand) return command;
  const inner = (command as { cmd?: unknown } | null)?.cmd;
  return inner instanceof PlannedCommand ? inner : null;
}

/**
 * Whether a generated sequence is too short for the history: fewer planned
 * steps (each runs one operation or more) or fewer cycle commands (each
 * completes one cycle: it recovers first if the volume is down, and sends a
 * superset of C).
 */
function shortOfHistory(commands: Iterable<unknown>, history: HistoryMin): boolean {
  let steps = 0;
  let cycles = 0;
  let unknown = 0;
  for (const command of commands) {
    const planned = plannedOf(command);
    if (planned === null) unknown++;
    steps += planned?.plans.length ?? 1;
    if (planned?.isCycle === true) cycles++;
  }
  // Commands this module cannot see into are never skipped for their cycles.
  return steps < history.operations || (unknown === 0 && cycles < history.cycles);
}

/** One arbitrary for every command, weighted: the system's operations, a whole cycle, then crashes. */
function commandArbitrary(generation: Generation): fc.Arbitrary<PlannedCommand> {
  const { ioMax } = generation;
  const ops = opArbitraries(generation);
  // A read is not a step of trace format v1, so a crash goes only inside the others.
  const mutating = fc.oneof(
    { arbitrary: ops.write, weight: 4 },
    { arbitrary: ops.transfer, weight: 1 },
    { arbitrary: ops.transferCurrent, weight: 2 },
    { arbitrary: ops.startCycle, weight: 2 },
    { arbitrary: ops.completeCycle, weight: 2 },
    { arbitrary: ops.badRequest, weight: 1 },
  );
  const command = (plans: StepPlan[]) => new PlannedCommand(plans, generation);
  const op = (arbitrary: fc.Arbitrary<OpPlan>) => arbitrary.map((plan) => command([{ kind: 'op', op: plan }]));
  const choices: fc.WeightedArbitrary<PlannedCommand>[] = [
    { arbitrary: op(ops.write), weight: 8 },
    { arbitrary: op(ops.transfer), weight: 2 },
    { arbitrary: op(ops.transferCurrent), weight: 4 },
    { arbitrary: op(ops.startCycle), weight: 3 },
    { arbitrary: op(ops.completeCycle), weight: 3 },
    { arbitrary: op(fc.oneof(ops.read, ops.read, ops.read, ops.badRead)), weight: 2 },
    { arbitrary: op(ops.badRequest), weight: 1 },
    { arbitrary: fresh(() => command([{ kind: 'cycle' }])), weight: generation.cycleWeight },
  ];
  if (generation.crashBetween) {
    choices.push(
      { arbitrary: fresh(() => command([{ kind: 'crash' }, { kind: 'recover' }])), weight: 2 },
      // A lone crash leaves the volume down for a while (every op E_PHASE); a lone recover ends it.
      { arbitrary: fresh(() => command([{ kind: 'crash' }])), weight: 1 },
      { arbitrary: fresh(() => command([{ kind: 'recover' }])), weight: 1 },
    );
  }
  if (generation.crashModes.length > 0) {
    // After the k-th I/O call, k in 0..ioMax; the power-loss seed picks what unsynced data survives.
    const crash = fc
      .tuple(fc.integer({ min: 0, max: ioMax }), fc.constantFrom(...generation.crashModes), fc.integer({ min: 0, max: 0xffff }))
      .map(([afterIo, mode, seed]): CrashRequest => (mode === 'process' ? { afterIo, mode, seed: 0, torn: false } : { afterIo, mode: 'power', seed, torn: mode === 'torn' }));
    choices.push({ arbitrary: fc.tuple(mutating, crash).map(([plan, request]) => command([{ kind: 'crashInside', op: plan, crash: request }, { kind: 'recover' }])), weight: 5 });
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
      const killThenPowerLoss = fc.tuple(mutating, kill, ops.write, powerLoss).map(([killed, killRequest, lost, lossRequest]) =>
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
  const history = options.historyMin;
  if (history !== undefined && (!Number.isInteger(history.operations) || history.operations < 0 || !Number.isInteger(history.cycles) || history.cycles < 0)) {
    throw new RangeError('fuzz: historyMin needs non-negative integer operations and cycles');
  }
  // Lengths are uniform up to commandsMax: half again the history's length keeps a third of the sequences long enough.
  const commandsMax = Math.max(options.commandsMax ?? fuzzDefaults.commandsMax, Math.ceil(((history?.operations ?? 0) * 3) / 2), history?.cycles ?? 0);
  const data = options.data ?? fuzzDefaults.data;
  if (data !== 'labels' && data !== 'bytes') throw new RangeError(`fuzz: data must be 'labels' or 'bytes', got '${String(data)}'`);
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
  const crashBetween = options.crashBetween ?? true;
  const cycleWeight = cycleWeightFor(history, crashBetween || crashModes.length > 0);
  const generation: Generation = { regions: options.regions, labels, regionSize, ioMax, crashModes, crashBetween, data, cycleWeight, sutName };

  const replay = options.path === undefined ? null : parseFuzzPath(options.path);
  // Unbiased: fast-check's bias favours very short sequences; lengths are uniform in 0..commandsMax.
  const sequences = fc.noBias(fc.commands([commandArbitrary(generation)], {
    maxCommands: commandsMax,
    size: 'max',
    ...(replay?.replayPath === undefined ? {} : { replayPath: replay.replayPath }),
  }));

  const totals = { runs: 0, shrinks: 0, steps: 0, invariantChecks: 0, crashStates: 0 };
  let shortestRun: { operations: number; cycles: number } | null = null;
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
      else if (failedAt === null && replay === null && history !== undefined && shortOfHistory(value[0], history)) return new fc.PreconditionFailure(false);
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
    '--data', generation.data,
    ...(generation.data === 'labels' ? ['--labels', String(generation.labels)] : []),
    '--commands-max', String(options.commandsMax ?? fuzzDefaults.commandsMax),
    '--region-size', String(generation.regionSize),
    '--io-max', String(generation.ioMax),
    '--crash-modes', generation.crashModes.length === 0 ? 'none' : generation.crashModes.join(','),
    '--crash-between', generation.crashBetween ? 'yes' : 'no',
    ...(options.historyMin === undefined ? [] : ['--history-operations', String(options.historyMin.operations), '--history-cycles', String(options.historyMin.cycles)]),
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
