// The bounded crash exploration: it passes on the reference implementation with
// every mode exhausted, it catches planted broken variants (in process, power and
// torn mode, inside an operation and between operations), and the trace it saves
// replays with the project's replayer, on real files, against the same variant.

import { mutants } from './mutants.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { crashesMain } from '../bin/commands/crashes.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { CowmapError } from '../impl/errors.ts';
import { choicesAt } from './crash/choices.ts';
import { exploreCrashes, explorationLabel, MemoryStorage, seedFor, shortenLabels } from './crashExploration.ts';
import type { ExplorationOptions, VolumeClass } from './crashExploration.ts';
import { Prng } from './prng.ts';
import { createReferenceSut } from './referenceSut.ts';
import { replayTrace } from './replay.ts';
import { readTrace } from './trace/reader.ts';

const scratch = mkdtempSync(join(tmpdir(), 'cowmap-crash-exploration-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let folderCount = 0;
function freshFolder(): string {
  return join(scratch, `failures-${folderCount++}`);
}

// ----- broken variants: the named mutants of harness/mutants.ts ---------------

const NextBitAfterData = mutants['next-bit-after-data']!.volumeClass;
const CopyAfterOverwrite = mutants['cow-after-overwrite']!.volumeClass;
const AcknowledgedBeforeDurable = mutants['ack-before-durable']!.volumeClass;
const RecoveryTrustsPageCache = mutants['recovery-trusts-page-cache']!.volumeClass;

/** Replays a saved trace with harness/replay.ts on real files (the reference SUT with `volumeClass`). */
async function replaysFailing(file: string, volumeClass: VolumeClass): Promise<boolean> {
  const trace = readTrace(readFileSync(file, 'utf8'), file);
  const result = await replayTrace(trace, createReferenceSut({ volumeClass }));
  return result.failure !== null;
}

/** The crashes inside operations and between them only: no create, recovery or scrub crashes, no rot (tested on their own below). */
const opsOnly = { createCrashes: false, recoveryPathsMax: 0, rot: false } as const;

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

// ----- tests ------------------------------------------------------------------------

describe('crash exploration', () => {
  it('passes on the reference implementation: L = 3, N = 2, V = 2, process and power exhausted', async () => {
    const { stats, failure, covered } = await exploreCrashes({
      ...opsOnly,
      length: 3,
      regions: 2,
      values: 2,
      failuresDir: freshFolder(),
    });
    assert.equal(failure, null);
    // The transitions its steps took, for the verify table and its gate: crashes in both phases among them.
    for (const id of ['idle:crash', 'replicating:crash', 'idle:startCycle'])
      assert.ok(covered.has(id), `not covered: ${id} (covered: ${[...covered].join(', ')})`);
    assert.equal(stats.sequences, 8 + 8 ** 2 + 8 ** 3);
    assert.ok(stats.prefixes > 40, `prefixes ${stats.prefixes}`);
    assert.ok(stats.crashPoints > 400, `crash points ${stats.crashPoints}`);
    assert.ok(stats.crashStates > 400, `crash states ${stats.crashStates}`);
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
    const merged = await exploreCrashes({ ...opsOnly, length: 2, regions: 2, values: 2, failuresDir: freshFolder() });
    const apart = await exploreCrashes({
      ...opsOnly,
      length: 2,
      regions: 2,
      values: 2,
      dedupePrefixes: false,
      failuresDir: freshFolder(),
    });
    assert.equal(merged.failure, null);
    assert.equal(apart.failure, null);
    assert.ok(merged.stats.prefixes < apart.stats.prefixes);
    assert.equal(merged.stats.sequences, apart.stats.sequences);
  });

  it('catches the next bit made durable after the data (process crash inside the write), with a trace that replays', async () => {
    const { failure, records } = await caught({ length: 2, regions: 2, values: 2 }, NextBitAfterData);
    assert.match(failure.description, /^write A A1 crashed after io \d+ \(process\) after a fresh volume$/);
    const crashed = records.find((record) => 'crashAfterIo' in record)!;
    assert.equal(crashed.op, 'write');
    assert.equal(crashed.mode, 'process');
    assert.ok(failure.exact);
  });

  it('catches the COW copy made after the overwrite in torn mode alone, with a seed that draws the same sectors', async () => {
    const { failure, records } = await caught(
      { length: 2, regions: 2, values: 2, modes: ['torn'] },
      CopyAfterOverwrite,
    );
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

  it('explores a wide geometry through the regions it writes: 17 regions, writes to regions 0 and 16 (map bytes 0 and 2, COW entry sectors 0 and 2)', async () => {
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

  it("torn mode tears the volume's own records inside a sector, not region data", () => {
    const write = (index: number, path: string, position: number, length: number) => ({
      index,
      path,
      position,
      length,
      sectorCount: Math.ceil(length / 512),
      carried: false,
    });
    const shape = {
      writes: [write(0, '/volume/meta', 512, 512), write(1, '/volume/primary', 0, 1024)],
      truncates: 0,
      namespace: 0,
    };
    const tearable = (info: { path: string }) => !info.path.endsWith('/primary');
    const { choices } = choicesAt('torn', shape, 6, 4, tearable);
    const tears = choices.filter((choice) => choice.tear !== undefined).map((choice) => choice.tear!);
    assert.equal(tears.length, 4, 'head or tail new, others kept or dropped, for the metadata slot only');
    assert.ok(tears.every((tear) => tear.write === 0 && tear.sector === 0));
    assert.equal(
      choicesAt('power', shape, 6, 4, tearable).choices.filter((choice) => choice.tear !== undefined).length,
      0,
      'power mode never tears',
    );
  });

  it('finds a seed whose coins draw a given subset, as the crash layer draws them', () => {
    for (const bits of [[], [true], [false, true, true], [true, false, false, true, false, true]]) {
      const seed = seedFor(bits, 1 << 16);
      assert.ok(seed !== null);
      const prng = new Prng(seed);
      assert.deepEqual(
        bits.map(() => prng.nextBool()),
        bits,
      );
    }
  });

  it('labels differ in every sector and read back short', () => {
    const label = explorationLabel('B', 2, 1536);
    assert.equal(label.length, 1026);
    for (const sector of [0, 512, 1024]) assert.equal(label.slice(sector, sector + 2), 'B2');
    assert.equal(explorationLabel('A', 1, 512), 'A1');
    assert.equal(shortenLabels(`P=${label} ${explorationLabel('A', 1, 1024)} 0`), 'P=B2 A1 0');
  });

  it('MemoryStorage behaves as node:fs does where the volume and the crash layer look', () => {
    const storage = new MemoryStorage();
    assert.throws(() => storage.mkdir('/v/s'), { code: 'ENOENT' }, 'mkdir makes one directory: its parent must exist');
    storage.mkdir('/v');
    storage.mkdir('/v/s');
    assert.throws(() => storage.mkdir('/v/s'), { code: 'EEXIST' });
    const file = storage.open('/v/a', { create: true });
    assert.throws(() => storage.open('/v/a', { create: true }), { code: 'EEXIST' });
    assert.throws(() => storage.open('/v/b', { create: false }), { code: 'ENOENT' });
    assert.throws(() => storage.open('/nodir/b', { create: true }), { code: 'ENOENT' });
    assert.throws(() => storage.open('/v/s', { create: false }), { code: 'EISDIR' });
    file.write(4, new Uint8Array([1, 2]));
    assert.equal(file.size(), 6);
    assert.deepEqual([...file.read(3, 5)], [0, 1, 2, 0, 0]);
    const copy = storage.clone();
    storage.rename('/v/a', '/v/c');
    file.write(0, new Uint8Array([9])); // the handle follows the file
    assert.deepEqual(storage.list('/v'), ['c', 's']);
    assert.deepEqual([...storage.open('/v/c', { create: false }).read(0, 1)], [9]);
    assert.deepEqual(copy.list('/v'), ['a', 's']);
    assert.deepEqual([...copy.open('/v/a', { create: false }).read(0, 6)], [0, 0, 0, 0, 1, 2]);
    assert.notEqual(copy.digest(), storage.digest());
    storage.unlink('/v/c');
    assert.equal(storage.exists('/v/c'), false);
    const lock = storage.lock('/v');
    assert.ok(lock !== null);
    assert.equal(storage.lock('/v'), null);
    lock.release();
    assert.ok(storage.lock('/v') !== null);
    const shared = [storage.lock('/w', { shared: true }), storage.lock('/w', { shared: true })];
    assert.ok(
      shared.every((held) => held !== null),
      'shared holders coexist',
    );
    assert.equal(storage.lock('/w'), null, 'an exclusive lock waits for every shared holder');
    for (const held of shared) held!.release();
    assert.ok(storage.lock('/w') !== null);
    assert.throws(() => storage.rmdir('/v'), { code: 'ENOTEMPTY' });
    storage.rmdir('/v/s');
    assert.equal(storage.exists('/v/s'), false);
    assert.throws(() => storage.rmdir('/v/s'), { code: 'ENOENT' });
    const readOnly = storage.open('/v/a2', { create: true });
    readOnly.close();
    const reader = storage.open('/v/a2', { create: false, readOnly: true });
    assert.throws(() => reader.write(0, new Uint8Array([1])), { code: 'EBADF' });
  });
});

describe('cowmap crashes', () => {
  function capture() {
    const output = { out: '', err: '' };
    const out = (text: string): void => {
      output.out += text;
    };
    const err = (text: string): void => {
      output.err += text;
    };
    return { output, streams: { out, err, progress: false } };
  }

  it('prints the summary table and exits 0 on the reference implementation', async () => {
    const { output, streams } = capture();
    const status = await crashesMain(
      [
        '--length',
        '2',
        '--regions',
        '2',
        '--values',
        '1',
        '--no-create',
        '--rot-states',
        '1',
        '--out-dir',
        freshFolder(),
      ],
      streams,
    );
    assert.equal(status, 0, output.out + output.err);
    for (const row of [
      'sequences covered',
      'distinct prefixes',
      'crash points',
      'exhausted / sampled',
      'crash states checked',
      'seconds',
      'crash states/s',
    ]) {
      assert.match(output.out, new RegExp(row.replace('/', '\\/')));
    }
    assert.match(output.out, /every crash state recovered to a state the model allows/);
    assert.match(
      output.out,
      /^crash states per kind: process \d+, power \d+, torn \d+, rot \d+, inside create 0, inside recovery \d+, inside scrub \d+; \d+ in all, in [\d.]+ s$/m,
    );
  });

  it('--quick runs the small and the wide geometry, each with create, recovery, rot and scrub', async () => {
    const { output, streams } = capture();
    const status = await crashesMain(['--quick', '--out-dir', freshFolder()], streams);
    assert.equal(status, 0, output.out + output.err);
    assert.match(output.out, /crash exploration: length 2, regions 2,/);
    assert.match(output.out, /crash exploration: length 2, regions 17 \(written: 0, 16\),/);
    const totals =
      /^crash states per kind: process (\d+), power \d+, torn (\d+), rot (\d+), inside create (\d+), inside recovery (\d+), inside scrub \d+;/m.exec(
        output.out,
      );
    assert.ok(totals !== null, output.out);
    for (const count of totals.slice(1)) assert.ok(Number(count) > 0, output.out);
  });

  it('exits 1 on a mutant, saving and printing the trace', async () => {
    const { output, streams } = capture();
    const dir = freshFolder();
    const status = await crashesMain(
      [
        '--length',
        '2',
        '--values',
        '1',
        '--mutant',
        'next-bit-after-data',
        '--no-create',
        '--no-recovery',
        '--no-rot',
        '--out-dir',
        dir,
      ],
      streams,
    );
    assert.equal(status, 1, output.out + output.err);
    assert.match(output.out, /^FAIL write A A1 crashed after io \d+ \(process\)/m);
    assert.match(
      output.out,
      /trace saved to .*crash-mutant-next-bit-after-data-write-io\d+-process-[0-9a-f]{8}\.jsonl/,
    );
    assert.match(output.out, /\{"trace":"cowmap","version":1/);
    assert.equal(readdirSync(dir).length, 1);
    assert.match(output.out, /^replay it: cowmap replay --mutant next-bit-after-data .*\.jsonl$/m);
  });

  it('exits 2 on bad usage', async () => {
    for (const args of [
      ['--modes', 'process,flood'],
      ['--mutant', 'no-such-mutant'],
      ['--length', '99'],
      ['--region-size', '1000'],
      ['--regions', '17'],
      ['--regions', '17', '--active', '0,17'],
    ]) {
      const { output, streams } = capture();
      const original = process.stderr.write;
      process.stderr.write = ((text: string) => {
        output.err += text;
        return true;
      }) as typeof process.stderr.write;
      try {
        assert.equal(await crashesMain(args, streams), 2, args.join(' '));
      } finally {
        process.stderr.write = original;
      }
      assert.match(output.err, /^cowmap crashes: .+\nusage: cowmap crashes /m, args.join(' '));
    }
  });
});
