// The bounded crash exploration catches planted broken variants (the named
// mutants of harness/mutants/mutants.ts), in process, power and torn mode, inside an
// operation and between operations, and after the recovery of a kill; the trace it
// saves replays with the project's replayer, on real files, against the same
// variant, and passes on the reference.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { mutantNamed } from '../mutants/mutants.ts';
import { replayTrace } from '../replay.ts';
import { createReferenceSut } from '../sut/referenceSut.ts';
import { readTrace } from '../trace/reader.ts';
import type { VolumeClass } from '../types.ts';
import { atLevel } from '../testLevel.ts';
import { exploreCrashes } from './explorer.ts';
import type { ExplorationOptions } from './options.ts';
import { freshFolder, opsOnly } from './testFolders.ts';

const NextBitAfterData = mutantNamed('next-bit-after-data').volumeClass;
const CopyAfterOverwrite = mutantNamed('cow-after-overwrite').volumeClass;
const AcknowledgedBeforeDurable = mutantNamed('ack-before-durable').volumeClass;
const RecoveryTrustsPageCache = mutantNamed('recovery-trusts-page-cache').volumeClass;

/** Replays a saved trace with harness/replay.ts on real files (the reference SUT with `volumeClass`). */
async function replaysFailing(file: string, volumeClass: VolumeClass): Promise<boolean> {
  const trace = readTrace(readFileSync(file, 'utf8'), file);
  const result = await replayTrace(trace, createReferenceSut({ volumeClass }));
  return result.failure !== null;
}

/** Explores with `volumeClass`: it must fail, with one saved trace that fails on it and passes on the reference. */
async function caught(options: ExplorationOptions, volumeClass: VolumeClass) {
  const failuresDir = freshFolder();
  const result = await exploreCrashes({
    ...opsOnly,
    ...options,
    volumeClass,
    volumeName: volumeClass.name,
    failuresDir,
  });
  assert.ok(result.failure !== null, `${volumeClass.name} was not caught`);
  const failure = result.failure;
  assert.ok(failure.file !== null);
  assert.deepEqual(readdirSync(failuresDir), [failure.file.slice(failuresDir.length + 1)]);
  assert.match(failure.file, /\/crash-[a-z0-9-]+\.jsonl$/);
  assert.equal(readFileSync(failure.file, 'utf8'), failure.trace);
  assert.ok(failure.reproduced, 'rerun from scratch, the failing case fails too');
  // The saved trace fails on the broken variant and passes on the reference, on real files.
  assert.ok(await replaysFailing(failure.file, volumeClass), 'the saved trace fails on the variant');
  assert.ok(!(await replaysFailing(failure.file, ReplicatedVolume)), 'the saved trace passes on the reference');
  return {
    result,
    failure,
    records: failure.trace
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('crash exploration catches broken variants', () => {
  it('catches the next bit made durable after the data (process crash inside the write), with a trace that replays', async () => {
    const { failure, records } = await caught({ length: 2, regions: 2, values: 2 }, NextBitAfterData);
    assert.match(failure.description, /^write A A1 crashed after io \d+ \(process\) after a fresh volume$/);
    const crashed = records.find((record) => 'crashAfterIo' in record)!;
    assert.equal(crashed.op, 'write');
    assert.equal(crashed.mode, 'process');
    assert.ok(failure.exact);
  });

  it('catches the COW copy made after the overwrite in torn mode alone, with a seed that draws the same sectors', async () => {
    // One value per region at the quick level (make test): the same first failure, in a fifth of the time.
    const values = atLevel(1, 2);
    const { failure, records } = await caught({ length: 2, regions: 2, values, modes: ['torn'] }, CopyAfterOverwrite);
    assert.match(failure.description, /^write A A1 crashed after io \d+ \(torn\) after 'startCycle'$/);
    const crashed = records.find((record) => 'crashAfterIo' in record)!;
    assert.equal(crashed.mode, 'power');
    assert.equal(crashed.torn, true);
    assert.equal(typeof crashed.seed, 'number');
    assert.ok(failure.exact);
    assert.match(
      failure.trace,
      /# the torn power crash below keeps this subset .* sectors [K-]+; seed \d+ draws exactly this subset/,
    );
  });

  it('catches a write acknowledged before it is durable (power crash between operations), written as crashAfterIo 0 of the next op', async () => {
    const { failure, records } = await caught(
      { length: 2, regions: 2, values: 2, modes: ['power'] },
      AcknowledgedBeforeDurable,
    );
    assert.match(failure.description, /^a power crash between operations after 'write A A1'$/);
    const crashed = records.find((record) => 'crashAfterIo' in record)!;
    assert.equal(crashed.crashAfterIo, 0);
    assert.equal(crashed.mode, 'power');
    assert.match(failure.trace, /# found as a power crash BETWEEN operations/);
    // In process mode alone it is invisible: a kill loses nothing that reached the OS.
    const processOnly = await exploreCrashes({
      ...opsOnly,
      length: 2,
      regions: 2,
      values: 2,
      modes: ['process'],
      volumeClass: AcknowledgedBeforeDurable,
      failuresDir: freshFolder(),
    });
    assert.equal(processOnly.failure, null);
  });

  it('catches a recovery that takes the page cache for durable: a kill, recovery, a finished cycle, then a power loss', async () => {
    const { failure, records, result } = await caught({ length: 1, regions: 2, values: 1 }, RecoveryTrustsPageCache);
    assert.match(
      failure.description,
      /crashed after io \d+ \(process\) after a fresh volume; recovered, finished the cycle, then lost power$/,
    );
    assert.match(failure.file!, /-then-power-[0-9a-f]{8}\.jsonl$/);
    const crashes = records.filter((record) => 'crashAfterIo' in record);
    assert.equal(crashes.length, 2);
    assert.equal(crashes[0]!.mode, 'process');
    assert.deepEqual([crashes[1]!.op, crashes[1]!.crashAfterIo, crashes[1]!.mode], ['startCycle', 0, 'power']);
    assert.ok(failure.exact, 'a seed draws the power loss that keeps nothing');
    assert.match(
      failure.trace,
      /# the process crash below leaves unsynced writes in the page cache, which recovery inherits/,
    );
    assert.ok(result.stats.powerLossesAfterRecovery >= 1);
    // Without kills nothing is inherited: a power crash leaves only durable data to read.
    const powerOnly = await exploreCrashes({
      ...opsOnly,
      length: 1,
      regions: 2,
      values: 1,
      modes: ['power', 'torn'],
      volumeClass: RecoveryTrustsPageCache,
      failuresDir: freshFolder(),
    });
    assert.equal(powerOnly.failure, null);
    assert.equal(powerOnly.stats.powerLossesAfterRecovery, 0);
  });
});
