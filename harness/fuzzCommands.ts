// The commands of the fast-check command sequences (commandSequences.ts runs
// them): ONE small command class (PlannedCommand) holding planned steps, made
// concrete at run time from a small fast-check model (FuzzModel), and the
// weighted arbitrary that plans them. The model only plans; the oracle inside
// SequenceRun judges every step.

import fc from 'fast-check';
import { sectorSize } from '../impl/geometry.ts';
import { outOfRangeRegions, regionArbitrary } from './geometry.ts';
import type { Oracle } from './oracle.ts';
import { contentRecipeArbitrary, RunContents } from './regionData.ts';
import type { ContentRecipe } from './regionData.ts';
import { describeScenarioStep } from './scenario.ts';
import type { ScenarioStep } from './scenario.ts';
import type { CrashRequest, SutOp } from './sut.ts';
import { type ContentBook, labelBytes } from './trace/content.ts';
import { defaultNames } from './trace/reader.ts';
import type { FaultMode } from './types.ts';

export type FuzzData = 'labels' | 'bytes';

export interface HistoryMin {
  readonly operations: number;
  readonly cycles: number;
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
export interface FuzzModel {
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

export function freshModel(regionSize: number): FuzzModel {
  return {
    crashed: false,
    phase: 'idle',
    current: new Set(),
    currentExact: true,
    next: new Set(),
    nextExact: true,
    sent: new Set(),
    contents: new RunContents(regionSize),
  };
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
  if (
    op.type === 'write' &&
    op.region >= 0 &&
    op.region < regions &&
    op.data.length === regionSize &&
    !model.next.has(op.region)
  ) {
    model.next.add(op.region);
    model.nextExact = false;
  } else if (op.type === 'startCycle' && model.phase !== 'replicating') {
    trackSwap(model, false);
    model.phase = 'unknown';
  } else if (
    op.type === 'completeCycle' &&
    model.phase === 'replicating' &&
    (!model.currentExact || isSubset(model.current, model.sent))
  ) {
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
export class SequenceRun {
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
export class PlannedCommand implements fc.AsyncCommand<FuzzModel, SequenceRun> {
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
          for (const region of [...model.current].sort((a, b) => a - b))
            await take({ kind: 'op', op: { type: 'transfer', region } });
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
      if ('label' in data)
        return { op: { type: 'write', region: plan.region, data: data.bytes }, naming: { label: data.label } };
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

export interface Generation {
  readonly regions: number;
  readonly labels: number;
  readonly regionSize: number;
  readonly ioMax: number;
  readonly crashModes: readonly FaultMode[];
  readonly crashBetween: boolean;
  readonly data: FuzzData;
  /** Weight of the cycle command among the others (more when a history asks for many cycles). */
  readonly cycleWeight: number;
  readonly sutName: string;
}

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
      ? fc
          .tuple(region, fc.integer({ min: 1, max: labels }))
          .map(([r, value]): OpPlan => ({ kind: 'write', region: r, data: labelled(r, value) }))
      : fc
          .tuple(region, contentRecipeArbitrary())
          .map(([r, recipe]): OpPlan => ({ kind: 'write', region: r, data: { recipe, size: 'region' } }));
  const fixed = (op: SutOp): OpPlan => ({ kind: 'fixed', op });
  const transfer = region.map((r) => fixed({ type: 'transfer', region: r }));
  // Biased to the regions the model holds current: a cycle can drain across a large volume.
  const transferCurrent = fc
    .tuple(fc.nat({ max: 1 << 16 }), region)
    .map(([pick, otherwise]): OpPlan => ({ kind: 'transferCurrent', pick, otherwise }));
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
      : fc
          .tuple(region, contentRecipeArbitrary(), wrongSize)
          .map(([r, recipe, size]): OpPlan => ({ kind: 'write', region: r, data: { recipe, size } }));
  const badRequest = fc.oneof(
    fc.tuple(outside, fc.integer({ min: 1, max: labels })).map(
      ([r]): OpPlan => ({
        kind: 'write',
        region: r,
        data: generation.data === 'labels' ? labelled(0, 1) : { recipe: { kind: 'random', seed: 0 }, size: 'region' },
      }),
    ),
    outside.map((r) => fixed({ type: 'transfer', region: r })),
    badWrite,
  );
  const read = fc
    .tuple(region, fc.constantFrom<('primary' | 'secondary')[]>('primary', 'secondary'))
    .map(([r, volume]) => fixed({ type: 'read', region: r, volume }));
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
export function cycleWeightFor(history: HistoryMin | undefined, crashes: boolean): number {
  if (history === undefined || history.cycles === 0) return 2;
  const others = crashes ? otherWeights.allCrashes : otherWeights.noCrashes;
  const share = Math.min(0.3, (2 * history.cycles) / Math.max(history.operations, 1));
  return Math.max(2, Math.ceil((share * others) / (1 - share)));
}

/** The command inside fast-check's wrapper (fast-check runs commands wrapped; the wrapper keeps it as `cmd`). */
export function plannedOf(command: unknown): PlannedCommand | null {
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
export function shortOfHistory(commands: Iterable<unknown>, history: HistoryMin): boolean {
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
export function commandArbitrary(generation: Generation): fc.Arbitrary<PlannedCommand> {
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
      .tuple(
        fc.integer({ min: 0, max: ioMax }),
        fc.constantFrom(...generation.crashModes),
        fc.integer({ min: 0, max: 0xffff }),
      )
      .map(
        ([afterIo, mode, seed]): CrashRequest =>
          mode === 'process'
            ? { afterIo, mode, seed: 0, torn: false }
            : { afterIo, mode: 'power', seed, torn: mode === 'torn' },
      );
    choices.push({
      arbitrary: fc
        .tuple(mutating, crash)
        .map(([plan, request]) => command([{ kind: 'crashInside', op: plan, crash: request }, { kind: 'recover' }])),
      weight: 5,
    });
    const powerModes = generation.crashModes.filter((mode) => mode !== 'process');
    if (generation.crashModes.includes('process') && powerModes.length > 0) {
      // A kill leaves unsynced writes in the page cache, and recovery inherits them
      // (CrashStorage.handOverTo): a power loss inside the next operation can take
      // back what a recovery read there without syncing it. Apart, the two crashes
      // rarely meet with no sync of the same file in between.
      const kill = fc
        .integer({ min: 0, max: ioMax })
        .map((afterIo): CrashRequest => ({ afterIo, mode: 'process', seed: 0, torn: false }));
      // Before the operation's first durable call: nothing of it can sync the inherited writes first.
      const powerLoss = fc
        .tuple(fc.constantFrom(...powerModes), fc.integer({ min: 0, max: 0xffff }))
        .map(([mode, seed]): CrashRequest => ({ afterIo: 0, mode: 'power', seed, torn: mode === 'torn' }));
      // The power loss goes inside a write: a write is allowed in every phase after a
      // recovery and makes at least one durable call, so the crash at call 0 always
      // happens (inside a rejected operation it never would, and the oracle's crash
      // would be a second kill).
      const killThenPowerLoss = fc
        .tuple(mutating, kill, ops.write, powerLoss)
        .map(([killed, killRequest, lost, lossRequest]) =>
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
