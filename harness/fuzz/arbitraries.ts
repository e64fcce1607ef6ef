// The weighted fast-check arbitrary that plans the fuzz commands: the system's
// operations over the whole volume (boundaries favoured), a whole cycle, crashes
// between operations and inside them.

import fc from 'fast-check';
import { sectorSize } from '../../impl/geometry.ts';
import { outOfRangeRegions, regionArbitrary } from '../geometry.ts';
import { contentRecipeArbitrary } from '../regionData.ts';
import type { CrashRequest, SutOp } from '../sut/systemUnderTest.ts';
import { labelBytes } from '../trace/content.ts';
import { defaultNames } from '../trace/reader.ts';
import { PlannedCommand } from './command.ts';
import type { OpPlan, StepPlan } from './command.ts';
import type { Generation, HistoryMin } from './generation.ts';

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

type Ops = ReturnType<typeof opArbitraries>;
type Command = (plans: StepPlan[]) => PlannedCommand;

/** One arbitrary for every command, weighted: the system's operations, a whole cycle, then crashes. */
export function commandArbitrary(generation: Generation): fc.Arbitrary<PlannedCommand> {
  const ops = opArbitraries(generation);
  const command: Command = (plans) => new PlannedCommand(plans, generation);
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
  if (generation.crashModes.length > 0) choices.push(...crashInsideChoices(generation, ops, command));
  return fc.oneof(...choices);
}

/** The commands with a crash inside an operation: one crash, and a kill whose recovery meets a power loss. */
function crashInsideChoices(
  generation: Generation,
  ops: Ops,
  command: Command,
): fc.WeightedArbitrary<PlannedCommand>[] {
  const { ioMax } = generation;
  // A read is not a step of trace format v1, so a crash goes only inside the others.
  const mutating = fc.oneof(
    { arbitrary: ops.write, weight: 4 },
    { arbitrary: ops.transfer, weight: 1 },
    { arbitrary: ops.transferCurrent, weight: 2 },
    { arbitrary: ops.startCycle, weight: 2 },
    { arbitrary: ops.completeCycle, weight: 2 },
    { arbitrary: ops.badRequest, weight: 1 },
  );
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
  const choices: fc.WeightedArbitrary<PlannedCommand>[] = [
    {
      arbitrary: fc
        .tuple(mutating, crash)
        .map(([plan, request]) => command([{ kind: 'crashInside', op: plan, crash: request }, { kind: 'recover' }])),
      weight: 5,
    },
  ];
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
  return choices;
}
