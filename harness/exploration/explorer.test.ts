// The bounded crash exploration on the reference implementation: it passes with
// process and power exhausted, samples beyond its subset bound, merges equal
// prefixes, crashes inside create and recovery, flips bytes (rot), explores a
// wide geometry through a few regions, and reports what the volume throws as a
// failure with its stack.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CowmapError } from '../../impl/errors.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { atLevel } from '../testLevel.ts';
import { exploreCrashes } from './explorer.ts';
import { freshFolder, opsOnly } from './testFolders.ts';

// The quick level (make test) writes one value to each region, not two: a third of the time, every check kept.
const reference = atLevel(
  { values: 1, prefixesMin: 20, crashPointsMin: 150, crashStatesMin: 200 },
  { values: 2, prefixesMin: 40, crashPointsMin: 400, crashStatesMin: 400 },
);

describe('crash exploration', () => {
  it(`passes on the reference implementation: L = 3, N = 2, V = ${reference.values}, process and power exhausted`, async () => {
    const { stats, failure, covered } = await exploreCrashes({
      ...opsOnly,
      length: 3,
      regions: 2,
      values: reference.values,
      failuresDir: freshFolder(),
    });
    assert.equal(failure, null);
    // The transitions its steps took, for the verify table and its gate: crashes in both phases among them.
    for (const id of ['idle:crash', 'replicating:crash', 'idle:startCycle'])
      assert.ok(covered.has(id), `not covered: ${id} (covered: ${[...covered].join(', ')})`);
    // The operations: a write of each value to each region, startCycle, two transfers, completeCycle.
    const ops = 2 * reference.values + 4;
    assert.equal(stats.sequences, ops + ops ** 2 + ops ** 3);
    assert.ok(stats.prefixes > reference.prefixesMin, `prefixes ${stats.prefixes}`);
    assert.ok(stats.crashPoints > reference.crashPointsMin, `crash points ${stats.crashPoints}`);
    assert.ok(stats.crashStates > reference.crashStatesMin, `crash states ${stats.crashStates}`);
    // A torn write of a 4 KiB map or digest-table page has 8 sectors: beyond 6 choice bits, those points are sampled.
    assert.equal(
      stats.byMode.process.sampledPoints + stats.byMode.power.sampledPoints,
      0,
      'process and power exhausted',
    );
    assert.equal(stats.exhaustedPoints + stats.sampledPoints, stats.crashPoints);
    assert.ok(stats.exhaustedPoints > stats.sampledPoints);
    // Every mode judged states of its own: torn writes do mix sectors (labels differ in every sector).
    for (const mode of ['process', 'power', 'torn'] as const)
      assert.ok(stats.byMode[mode].states > 0, `${mode} states`);
    assert.ok(stats.choiceBitsMax.torn > stats.choiceBitsMax.power);
    assert.equal(stats.runs, stats.crashStates + stats.duplicates);
    // Kills that left unsynced writes were followed, after recovery, by a power loss.
    assert.ok(stats.powerLossesAfterRecovery > 50, `power losses after recovery ${stats.powerLossesAfterRecovery}`);
    assert.ok(stats.powerLossesAfterRecovery <= stats.byMode.process.states);
  });

  it('samples seeded subsets beyond the subset bound, and says how many crash points it sampled', async () => {
    const { stats, failure } = await exploreCrashes({
      ...opsOnly,
      length: 2,
      regions: 2,
      values: 1,
      subsetBitsMax: 1,
      samplesMax: 4,
      failuresDir: freshFolder(),
    });
    assert.equal(failure, null);
    assert.ok(stats.sampledPoints > 0);
    assert.ok(stats.byMode.torn.sampledPoints > 0);
    assert.equal(stats.byMode.process.sampledPoints, 0);
    assert.equal(stats.exhaustedPoints + stats.sampledPoints, stats.crashPoints);
  });

  it('deduplicates prefixes without losing crash points of its own: fewer prefixes, the same verdict', async () => {
    const shape = { ...opsOnly, length: 2, regions: 2, values: reference.values };
    const merged = await exploreCrashes({ ...shape, failuresDir: freshFolder() });
    const apart = await exploreCrashes({
      ...shape,
      dedupePrefixes: false,
      failuresDir: freshFolder(),
    });
    assert.equal(merged.failure, null);
    assert.equal(apart.failure, null);
    assert.ok(merged.stats.prefixes < apart.stats.prefixes);
    assert.equal(merged.stats.sequences, apart.stats.sequences);
  });

  it('crashes inside create at each durable call: open then finds no volume or the fresh one, a second create may say E_EXISTS', async () => {
    const { stats, failure } = await exploreCrashes({
      length: 0,
      regions: 2,
      values: 1,
      recoveryPathsMax: 0,
      rot: false,
      failuresDir: freshFolder(),
    });
    assert.equal(failure, null, failure?.message);
    assert.ok(stats.inside.create.points > 20, `create crash points ${stats.inside.create.points}`);
    assert.ok(
      stats.inside.create.states > stats.inside.create.points,
      `create crash states ${stats.inside.create.states}`,
    );
  });

  it('crashes inside recovery at each durable call, and inside the recovery after a kill inside one', async () => {
    const { stats, failure } = await exploreCrashes({
      ...opsOnly,
      length: 1,
      regions: 2,
      values: 1,
      recoveryPathsMax: 4,
      failuresDir: freshFolder(),
    });
    assert.equal(failure, null, failure?.message);
    assert.ok(stats.inside.recovery.points > 10, `recovery crash points ${stats.inside.recovery.points}`);
    assert.ok(stats.inside.recovery.states > 0, `recovery crash states ${stats.inside.recovery.states}`);
    assert.ok(stats.inside.recovery.runs >= stats.inside.recovery.points);
  });

  it('rot: a flipped byte in each structure ends in E_CORRUPT or in cycles that make S equal to P', async () => {
    const { stats, failure } = await exploreCrashes({
      ...opsOnly,
      length: 1,
      regions: 2,
      values: 1,
      rot: true,
      rotStatesMax: 2,
      scrubStatesMax: 0,
      failuresDir: freshFolder(),
    });
    assert.equal(failure, null, failure?.message);
    assert.ok(stats.rot.runs > 40, `rot runs ${stats.rot.runs}`);
    assert.equal(stats.rot.detected + stats.rot.healed, stats.rot.runs);
    assert.ok(stats.rot.detected > 0, 'some flips are reported as E_CORRUPT');
    assert.ok(stats.rot.healed > 0, 'some flips are harmless (a stale slot, a region resent)');
  });

  it('explores a wide geometry through the regions it writes: 17 regions, writes to 0 and 16 (map bytes 0 and 2, COW entry sectors 0 and 2)', async () => {
    const { stats, failure } = await exploreCrashes({
      ...opsOnly,
      length: 2,
      regions: 17,
      activeRegions: [0, 16],
      values: 1,
      regionSize: 512,
      failuresDir: freshFolder(),
    });
    assert.equal(failure, null, failure?.message);
    assert.equal(stats.sequences, 6 + 6 ** 2, 'two writes, startCycle, two transfers, completeCycle');
    assert.ok(stats.crashStates > 20);
  });

  it('an error the implementation throws is reported as a failure with its stack, never a crash of the explorer', async () => {
    class Throwing extends ReplicatedVolume {
      protected override swapMaps(): void {
        throw new Error('planted failure in swapMaps');
      }
    }
    const thrown = await exploreCrashes({
      ...opsOnly,
      length: 1,
      regions: 2,
      values: 1,
      volumeClass: Throwing,
      volumeName: 'throwing',
      failuresDir: null,
    });
    assert.ok(thrown.failure !== null);
    assert.match(thrown.failure.message, /planted failure in swapMaps/);
    assert.match(thrown.failure.message, /\n\s+at .*swapMaps/, 'the message carries the stack');
    class ThrowingRecover extends ReplicatedVolume {
      protected override recover(): void {
        throw new Error('planted failure in recover');
      }
    }
    // create ends with the recovery that open runs: the very first create throws.
    const atCreate = await exploreCrashes({
      length: 1,
      regions: 2,
      values: 1,
      volumeClass: ThrowingRecover,
      volumeName: 'throwing at create',
      failuresDir: null,
    });
    assert.ok(atCreate.failure !== null);
    assert.match(atCreate.failure.message, /planted failure in recover/);
    assert.ok(atCreate.failure.notReplayable !== undefined);
    class CorruptState extends ReplicatedVolume {
      override state(): ReturnType<ReplicatedVolume['state']> {
        throw new CowmapError('E_CORRUPT', 'planted: state() refuses');
      }
    }
    const corrupt = await exploreCrashes({
      ...opsOnly,
      length: 1,
      regions: 2,
      values: 1,
      volumeClass: CorruptState,
      volumeName: 'corrupt state',
      failuresDir: null,
    });
    assert.ok(corrupt.failure !== null);
    assert.match(corrupt.failure.message, /E_CORRUPT: planted: state\(\) refuses/);
  });
});
