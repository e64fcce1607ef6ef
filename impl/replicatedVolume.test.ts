// The volume against docs/protocol.md: the FIG. 4 scenario, every rule and rejection, the
// byte API, recovery of a running cycle, the durable order and the amount of I/O
// of each operation (through the recording and failing storage doubles of
// harness/storage/), and storage errors.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { CowmapError, type ErrorCode } from './errors.ts';
import { makeTemporaryDir, NodeStorage, removeTree } from './nodeStorage.ts';
import { ReplicatedVolume, type VolumeState } from './replicatedVolume.ts';
import { FailingStorage, RecordingStorage, type StorageCallKind } from '../harness/storage/storageDoubles.ts';

const regionSize = 512;

function label(text: string, size = regionSize): Uint8Array {
  const bytes = new Uint8Array(size);
  bytes.set(new TextEncoder().encode(text));
  return bytes;
}

function digest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A call as these tests read it: by its file's base name; opens left out. */
interface IoEntry {
  kind: Exclude<StorageCallKind, 'open'>;
  /** The file's base name: meta, primary, map0, map1, cow, image, ... */
  file: string;
  position?: number;
  length?: number;
}

function storageError(code: string): Error {
  return Object.assign(new Error(`${code}: injected`), { code, syscall: 'write' });
}

/** The calls since `mark`, reads included. */
function callsSince(mark: number): IoEntry[] {
  return recorder
    .since(mark)
    .flatMap(({ kind, path, position, length }) =>
      kind === 'open' ? [] : [{ kind, file: basename(path), position, length }],
    );
}

/** The durable calls since `mark`. */
function durableSince(mark: number): IoEntry[] {
  return callsSince(mark).filter((entry) => entry.kind !== 'read');
}

function expectCode(call: () => unknown, code: ErrorCode, message?: RegExp): void {
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof CowmapError, `expected a CowmapError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

let root: string;
// The recorder under the failing storage: a call made to fail is not logged.
let recorder: RecordingStorage;
let storage: FailingStorage;
const volumes: ReplicatedVolume[] = [];

beforeEach(() => {
  root = makeTemporaryDir('cowmap-volume-');
  recorder = new RecordingStorage(new NodeStorage());
  storage = new FailingStorage(recorder);
});

afterEach(() => {
  for (const volume of volumes.splice(0)) volume.close();
  removeTree(root);
});

function createVolume(regions = 4, size = regionSize, name = 'vol'): ReplicatedVolume {
  const volume = ReplicatedVolume.create(storage, join(root, name), { regions, regionSize: size });
  volumes.push(volume);
  return volume;
}

function reopen(volume: ReplicatedVolume): ReplicatedVolume {
  volume.close();
  const reopened = ReplicatedVolume.open(storage, volume.dir);
  volumes.push(reopened);
  return reopened;
}

/** The state with region contents named by the label that produced them (or the digest). */
function named(state: VolumeState, labels: string[]) {
  const names = new Map(labels.map((text) => [digest(label(text)), text]));
  names.set(digest(new Uint8Array(regionSize)), '0');
  const name = (d: string | null) => (d === null ? null : (names.get(d) ?? d));
  return {
    phase: state.phase,
    current: state.current,
    next: state.next,
    cow: state.cowData.map(name),
    primary: state.primary.map(name),
    secondary: state.secondary.map(name),
  };
}

describe('FIG. 4 (docs/protocol.md section 7)', () => {
  test('the golden scenario gives the tables T0, T1, T2, T3', () => {
    const labels = ['A0', 'B0', 'C0', 'D0', 'A1', 'B1', 'D1', 'B2'];
    const v = createVolume();
    const [A, B, C, D] = [0, 1, 2, 3];
    const cycle = () => {
      v.startCycle();
      for (const region of v.currentRegions()) v.transfer(region);
      v.completeCycle();
    };
    // 1. T0
    v.writeRegion(A, label('A0'));
    v.writeRegion(B, label('B0'));
    v.writeRegion(C, label('C0'));
    v.writeRegion(D, label('D0'));
    cycle();
    assert.deepEqual(named(v.state(), labels), {
      phase: 'idle',
      current: '0000',
      next: '0000',
      cow: [null, null, null, null],
      primary: ['A0', 'B0', 'C0', 'D0'],
      secondary: ['A0', 'B0', 'C0', 'D0'],
    });
    // 2.
    v.writeRegion(A, label('A1'));
    v.writeRegion(B, label('B1'));
    v.writeRegion(D, label('D1'));
    assert.equal(v.state().next, '1101');
    // 3.
    v.startCycle();
    assert.deepEqual(named(v.state(), labels), {
      phase: 'replicating',
      current: '1101',
      next: '0000',
      cow: [null, null, null, null],
      primary: ['A1', 'B1', 'C0', 'D1'],
      secondary: ['A0', 'B0', 'C0', 'D0'],
    });
    // 4., 5. T1
    v.writeRegion(B, label('B2'));
    v.transfer(A);
    v.transfer(B);
    v.transfer(D);
    assert.deepEqual(named(v.state(), labels), {
      phase: 'replicating',
      current: '1101',
      next: '0100',
      cow: [null, 'B1', null, null],
      primary: ['A1', 'B2', 'C0', 'D1'],
      secondary: ['A1', 'B1', 'C0', 'D1'],
    });
    // 6., 7. T2
    v.completeCycle();
    v.startCycle();
    v.transfer(B);
    assert.deepEqual(named(v.state(), labels), {
      phase: 'replicating',
      current: '0100',
      next: '0000',
      cow: [null, null, null, null],
      primary: ['A1', 'B2', 'C0', 'D1'],
      secondary: ['A1', 'B2', 'C0', 'D1'],
    });
    // 8. T3: every region overwritten is preserved, in C or not.
    v.writeRegion(A, label('A0'));
    v.writeRegion(B, label('B0'));
    v.writeRegion(D, label('D0'));
    assert.deepEqual(named(v.state(), labels), {
      phase: 'replicating',
      current: '0100',
      next: '1101',
      cow: ['A1', 'B2', null, 'D1'],
      primary: ['A0', 'B0', 'C0', 'D0'],
      secondary: ['A1', 'B2', 'C0', 'D1'],
    });
    assert.equal(v.state().cow, '1101');
    // The rejections of the trace, then the rest of it.
    expectCode(() => v.startCycle(), 'E_PHASE');
    expectCode(() => v.transfer(A), 'E_NOT_CURRENT');
    expectCode(() => v.writeRegion(4, label('E0')), 'E_RANGE');
    v.completeCycle();
    assert.deepEqual(named(v.state(), labels), {
      phase: 'idle',
      current: '0000',
      next: '1101',
      cow: [null, null, null, null],
      primary: ['A0', 'B0', 'C0', 'D0'],
      secondary: ['A1', 'B2', 'C0', 'D1'],
    });
    cycle();
    assert.deepEqual(named(v.state(), labels), {
      phase: 'idle',
      current: '0000',
      next: '0000',
      cow: [null, null, null, null],
      primary: ['A0', 'B0', 'C0', 'D0'],
      secondary: ['A0', 'B0', 'C0', 'D0'],
    });
  });

  test('region content for a label is its UTF-8 bytes then zeros', () => {
    const v = createVolume();
    v.writeRegion(1, label('B2'));
    const bytes = v.readRegion(1);
    assert.equal(bytes.length, regionSize);
    assert.deepEqual([...bytes.subarray(0, 3)], [0x42, 0x32, 0]);
    assert.ok(bytes.subarray(2).every((byte) => byte === 0));
  });
});

describe('rejections (docs/protocol.md sections 2 and 4)', () => {
  /** Asserts the call is rejected with `code`, with no durable I/O and no change of state. */
  function rejected(v: ReplicatedVolume, call: () => unknown, code: ErrorCode, message?: RegExp): void {
    const before = v.state();
    const sent = v.unsentRegions();
    const mark = recorder.mark();
    expectCode(call, code, message);
    assert.deepEqual(durableSince(mark), [], 'a rejected call made durable I/O');
    assert.deepEqual(v.state(), before, 'a rejected call changed the state');
    assert.deepEqual(v.unsentRegions(), sent, 'a rejected call changed the sent set');
  }

  test('write: E_RANGE, then E_SIZE; the range is judged first', () => {
    const v = createVolume();
    for (const region of [-1, 4, 1.5, Number.NaN]) rejected(v, () => v.writeRegion(region, label('x')), 'E_RANGE');
    rejected(v, () => v.writeRegion(4, new Uint8Array(3)), 'E_RANGE');
    rejected(
      v,
      () => v.writeRegion(0, new Uint8Array(regionSize - 1)),
      'E_SIZE',
      /write\(region 0\) while idle: .*512 bytes/,
    );
    rejected(v, () => v.writeRegion(0, new Uint8Array(regionSize + 1)), 'E_SIZE');
    v.startCycle();
    rejected(v, () => v.writeRegion(7, new Uint8Array(1)), 'E_RANGE', /while replicating/);
  });

  test('transfer: E_RANGE before E_PHASE before E_NOT_CURRENT', () => {
    const v = createVolume();
    v.writeRegion(1, label('B1'));
    rejected(v, () => v.transfer(9), 'E_RANGE');
    rejected(v, () => v.transfer(1), 'E_PHASE', /^transfer\(region 1\) while idle: /);
    v.startCycle();
    rejected(v, () => v.transfer(9), 'E_RANGE');
    rejected(v, () => v.transfer(0), 'E_NOT_CURRENT', /transfer\(region 0\) while replicating/);
  });

  test('transferRegions: judged whole before any I/O, E_RANGE before E_PHASE before E_NOT_CURRENT', () => {
    const v = createVolume();
    v.writeRegion(1, label('B1'));
    v.writeRegion(2, label('C1'));
    rejected(v, () => v.transferRegions([1, 9]), 'E_RANGE', /transferRegions\(region 9\) while idle/);
    rejected(v, () => v.transferRegions([1]), 'E_PHASE', /^transferRegions\(1 region\(s\)\) while idle: /);
    rejected(v, () => v.transferRegions([]), 'E_PHASE');
    rejected(v, () => v.transferRegions('1' as never), 'E_BAD_REQUEST');
    v.startCycle();
    rejected(v, () => v.transferRegions([1, 2, 9]), 'E_RANGE');
    // Region 1 is in C, region 0 is not: nothing is sent, not even region 1.
    rejected(v, () => v.transferRegions([1, 0]), 'E_NOT_CURRENT', /transferRegions\(region 0\) while replicating/);
    v.transferRegions([2, 1, 2]);
    assert.deepEqual(v.unsentRegions(), []);
    v.completeCycle();
    assert.deepEqual(v.state().secondary, v.state().primary);
  });

  test('startCycle while replicating and completeCycle while idle: E_PHASE', () => {
    const v = createVolume();
    rejected(v, () => v.completeCycle(), 'E_PHASE');
    v.startCycle();
    rejected(v, () => v.startCycle(), 'E_PHASE');
  });

  test('completeCycle before every region of C is sent: E_NOT_DRAINED', () => {
    const v = createVolume();
    v.writeRegion(0, label('A1'));
    v.writeRegion(2, label('C1'));
    v.startCycle();
    rejected(v, () => v.completeCycle(), 'E_NOT_DRAINED', /not sent: 0, 2/);
    v.transfer(2);
    rejected(v, () => v.completeCycle(), 'E_NOT_DRAINED', /not sent: 0$/);
    v.transfer(0);
    v.completeCycle();
    assert.equal(v.phase, 'idle');
  });

  test('an empty cycle is allowed', () => {
    const v = createVolume();
    v.startCycle();
    assert.deepEqual(v.currentRegions(), []);
    v.completeCycle();
    assert.equal(v.cycle, 1);
  });

  test('transfer of a region already sent is allowed and idempotent', () => {
    const v = createVolume();
    v.writeRegion(3, label('D1'));
    v.startCycle();
    v.transfer(3);
    const after = v.state();
    v.transfer(3);
    assert.deepEqual(v.state(), after);
    v.completeCycle();
  });

  test('reads and the byte API: E_BAD_REQUEST, E_RANGE', () => {
    const v = createVolume();
    rejected(v, () => v.readRegion(4), 'E_RANGE');
    rejected(v, () => v.readRegion(0, 'tertiary' as 'primary'), 'E_BAD_REQUEST');
    rejected(v, () => v.write(4 * regionSize - 1, new Uint8Array(2)), 'E_RANGE');
    rejected(v, () => v.write(-1, new Uint8Array(1)), 'E_RANGE');
    rejected(v, () => v.write(0.5, new Uint8Array(1)), 'E_RANGE');
    rejected(v, () => v.read(0, 4 * regionSize + 1), 'E_RANGE');
    rejected(v, () => v.read(0, 1, 'other' as 'primary'), 'E_BAD_REQUEST');
  });

  test('create: E_SIZE for bad geometry (before E_EXISTS), E_EXISTS; open: E_NOT_FOUND', () => {
    createVolume();
    const dir = join(root, 'vol');
    for (const geometry of [
      { regions: 0, regionSize },
      { regions: 1.5, regionSize },
      { regions: 4, regionSize: 0 },
      { regions: 4, regionSize: 1000 },
      { regions: 4, regionSize: -512 },
      { regions: 2 ** 30, regionSize },
    ]) {
      expectCode(() => ReplicatedVolume.create(storage, dir, geometry), 'E_SIZE');
    }
    expectCode(() => ReplicatedVolume.create(storage, dir, { regions: 4, regionSize }), 'E_EXISTS');
    expectCode(() => ReplicatedVolume.open(storage, join(root, 'missing')), 'E_NOT_FOUND');
  });

  test('a closed volume rejects every call with E_PHASE; close is idempotent', () => {
    const v = createVolume();
    v.close();
    v.close();
    expectCode(() => v.readRegion(0), 'E_PHASE', /closed/);
    expectCode(() => v.startCycle(), 'E_PHASE');
  });
});

describe('byte API', () => {
  test('an unaligned write inside one region merges with the region', () => {
    const v = createVolume();
    v.writeRegion(1, label('B1'));
    v.write(regionSize + 100, new TextEncoder().encode('hello'));
    const region = v.readRegion(1);
    assert.equal(new TextDecoder().decode(region.subarray(0, 2)), 'B1');
    assert.equal(new TextDecoder().decode(region.subarray(100, 105)), 'hello');
    assert.deepEqual(v.read(regionSize + 99, 7), Uint8Array.of(0, ...new TextEncoder().encode('hello'), 0));
    assert.equal(v.state().next, '0100');
  });

  test('a write spanning regions applies region by region in ascending order', () => {
    const v = createVolume();
    const bytes = new Uint8Array(2 * regionSize + 10).map((_, i) => (i % 251) + 1);
    const mark = recorder.mark();
    v.write(regionSize - 5, bytes);
    const primaryWrites = durableSince(mark).filter((entry) => entry.kind === 'write' && entry.file === 'primary');
    assert.deepEqual(
      primaryWrites.map((entry) => entry.position),
      [0, 1, 2, 3].map((region) => region * regionSize),
    );
    assert.deepEqual(v.read(regionSize - 5, bytes.length), bytes);
    assert.deepEqual(v.readRegion(0).subarray(0, regionSize - 5), new Uint8Array(regionSize - 5));
    assert.equal(v.state().next, '1111');
  });

  test('a partial-region write while replicating preserves the whole old region', () => {
    const v = createVolume();
    v.writeRegion(2, label('C1'));
    const old = v.readRegion(2);
    v.startCycle();
    v.write(2 * regionSize + 300, Uint8Array.of(7, 7, 7));
    assert.equal(v.state().cowData[2], digest(old));
    v.transfer(2);
    assert.deepEqual(v.readRegion(2, 'secondary'), old);
    assert.deepEqual(v.read(2 * regionSize + 299, 5), Uint8Array.of(0, 7, 7, 7, 0));
  });

  test('a zero-length write does nothing; read works on the secondary', () => {
    const v = createVolume();
    const mark = recorder.mark();
    v.write(4 * regionSize, new Uint8Array(0));
    assert.deepEqual(durableSince(mark), []);
    v.write(10, Uint8Array.of(1, 2, 3));
    v.startCycle();
    v.transfer(0);
    v.completeCycle();
    assert.deepEqual(v.read(9, 5, 'secondary'), Uint8Array.of(0, 1, 2, 3, 0));
  });
});

describe('recovery (docs/protocol.md section 2, recover)', () => {
  test('a running cycle resumes: every region of C must be sent again', () => {
    let v = createVolume();
    v.writeRegion(0, label('A1'));
    v.writeRegion(3, label('D1'));
    v.startCycle();
    v.writeRegion(3, label('D2'));
    v.transfer(0);
    v.transfer(3);
    const before = v.state();
    v = reopen(v);
    assert.equal(v.phase, 'replicating');
    assert.deepEqual(v.state(), before);
    assert.deepEqual(v.unsentRegions(), [0, 3]);
    expectCode(() => v.completeCycle(), 'E_NOT_DRAINED');
    v.transfer(0);
    v.transfer(3);
    v.completeCycle();
    assert.equal(v.state().secondary[3], digest(label('D1')), 'the resent region comes from the COW copy');
  });

  test('a second write in the cycle after a reopen copies nothing', () => {
    let v = createVolume();
    v.writeRegion(1, label('B1'));
    v.startCycle();
    v.writeRegion(1, label('B2'));
    v = reopen(v);
    const mark = recorder.mark();
    v.writeRegion(1, label('B3'));
    assert.deepEqual(
      durableSince(mark).map((entry) => `${entry.kind} ${entry.file}`),
      ['write primary', 'sync primary'],
    );
    assert.equal(v.state().cowData[1], digest(label('B1')));
  });

  test('a next bit set in the cycle and lost with its unsynced map byte is rebuilt from the COW entry', () => {
    let v = createVolume();
    v.writeRegion(0, label('A1'));
    v.startCycle();
    v.writeRegion(3, label('D1'));
    const before = v.state();
    assert.equal(before.next, '0001');
    v.close();
    // What a power loss may do: the next map's byte never reached the disk.
    const nextMap = new NodeStorage().open(join(v.dir, 'map0'), { create: false });
    nextMap.write(0, Uint8Array.of(0));
    nextMap.sync();
    nextMap.close();
    v = ReplicatedVolume.open(storage, v.dir);
    volumes.push(v);
    assert.deepEqual(v.state(), before);
    // Completion makes the rebuilt bit durable in the map before W goes stale.
    v.transferRegions(v.currentRegions());
    v.completeCycle();
    v = reopen(v);
    assert.equal(v.state().next, '0001');
  });

  test('idle recovery clears a current map that a crash after completion left set', () => {
    let v = createVolume();
    v.writeRegion(2, label('C1'));
    v.startCycle();
    v.transfer(2);
    // Complete, but fail the clearing of the map: the metadata already says idle.
    storage.failAt(2, storageError('EIO'));
    expectCode(() => v.completeCycle(), 'E_IO');
    v = reopen(v);
    assert.equal(v.phase, 'idle');
    assert.equal(v.state().current, '0000');
    const mark = recorder.mark();
    v.startCycle();
    assert.equal(v.state().next, '0000', 'the map that became next is clear');
    assert.equal(durableSince(mark).length, 2);
  });
});

describe('durable order and I/O per operation (docs/protocol.md section 5)', () => {
  const calls = (entries: IoEntry[]) =>
    entries.map((entry) => `${entry.kind} ${entry.file}${entry.position === undefined ? '' : ` @${entry.position}`}`);

  test('a write while idle: next bit durable, then the data', () => {
    const v = createVolume(16);
    let mark = recorder.mark();
    v.writeRegion(9, label('x'));
    assert.deepEqual(calls(durableSince(mark)), [
      'write map1 @0',
      'sync map1',
      `write primary @${9 * regionSize}`,
      'sync primary',
    ]);
    mark = recorder.mark();
    v.writeRegion(9, label('y'));
    assert.deepEqual(
      calls(durableSince(mark)),
      [`write primary @${9 * regionSize}`, 'sync primary'],
      'bit already set: no metadata I/O',
    );
  });

  test('a write while replicating: COW copy durable, then the data; the next bit is written and synced at completion', () => {
    const v = createVolume(16);
    v.writeRegion(3, label('old'));
    v.startCycle();
    let mark = recorder.mark();
    v.writeRegion(3, label('new'));
    const cowIndexSize = 16 * 64;
    // No map I/O: the durable COW entry implies the bit, and recovery rebuilds it
    // from the entry.
    assert.deepEqual(calls(durableSince(mark)), [
      `write cow @${cowIndexSize + 3 * regionSize}`,
      `write cow @${3 * 64}`,
      'sync cow',
      `write primary @${3 * regionSize}`,
      'sync primary',
    ]);
    mark = recorder.mark();
    v.writeRegion(3, label('newer'));
    assert.deepEqual(calls(durableSince(mark)), [`write primary @${3 * regionSize}`, 'sync primary']);
    // A region outside C is preserved as well (FIG. 4B T3), once.
    mark = recorder.mark();
    v.writeRegion(12, label('z'));
    assert.deepEqual(
      calls(durableSince(mark)).map((call) => call.split(' @')[0]),
      ['write cow', 'write cow', 'sync cow', 'write primary', 'sync primary'],
    );
    // Completion writes the next map's bytes (regions 3 and 12: bytes 0 and 1, one
    // run) and syncs them before the metadata update that makes the COW entries
    // stale; then it clears the current map (map1: region 3, byte 0).
    for (const region of v.currentRegions()) v.transfer(region);
    mark = recorder.mark();
    v.completeCycle();
    assert.deepEqual(calls(durableSince(mark)), [
      'write map0 @0',
      'sync map0',
      'write meta @512',
      'sync meta',
      'write map1 @0',
      'sync map1',
    ]);
  });

  test('transfer: the secondary region is durable before it returns; complete: one metadata update, then the map', () => {
    const v = createVolume(16);
    v.writeRegion(5, label('a'));
    v.writeRegion(13, label('b'));
    v.startCycle();
    let mark = recorder.mark();
    v.transfer(13);
    // The secondary's digest table follows the image (docs/format.md, "DIR2/digests").
    assert.deepEqual(calls(durableSince(mark)), [
      `write image @${13 * regionSize}`,
      'write digests @0',
      'sync image',
      'sync digests',
    ]);
    v.transfer(5);
    mark = recorder.mark();
    v.completeCycle();
    // Sequence 3 goes to slot 1 (bytes 512..1023); map1 was current in cycle 1.
    assert.deepEqual(calls(durableSince(mark)), ['write meta @512', 'sync meta', 'write map1 @0', 'sync map1']);
  });

  for (const regions of [8, 65536]) {
    test(`the swap is one metadata update, 2 durable calls, with ${regions} regions`, () => {
      const v = createVolume(regions);
      for (const region of [0, 5, regions - 1]) v.writeRegion(region, label('x'));
      const mark = recorder.mark();
      v.startCycle();
      assert.deepEqual(calls(callsSince(mark)), ['write meta @0', 'sync meta']);
      assert.deepEqual(v.currentRegions(), [0, 5, regions - 1]);
      assert.deepEqual(v.nextRegions(), []);
    });
  }

  test('transferRegions: one write per region, then one sync of the secondary', () => {
    const v = createVolume(16);
    for (const region of [2, 9, 14]) v.writeRegion(region, label(`r${region}`));
    v.startCycle();
    const mark = recorder.mark();
    v.transferRegions([14, 2, 9]);
    assert.deepEqual(calls(durableSince(mark)), [
      `write image @${14 * regionSize}`,
      `write image @${2 * regionSize}`,
      `write image @${9 * regionSize}`,
      'write digests @0',
      'sync image',
      'sync digests',
    ]);
    assert.deepEqual(v.unsentRegions(), []);
  });

  test('a cycle reads and writes only the regions in the current map, plus metadata and map bytes', () => {
    const regions = 256;
    const v = createVolume(regions);
    const dirty = [3, 40, 200];
    for (const region of dirty) v.writeRegion(region, label(`r${region}`));
    v.startCycle();
    v.writeRegion(40, label('again'));
    const mark = recorder.mark();
    for (const region of v.currentRegions()) v.transfer(region);
    v.completeCycle();
    const cowIndexSize = regions * 64;
    for (const entry of callsSince(mark)) {
      if (entry.kind === 'sync') continue;
      const where = `${entry.kind} ${entry.file} @${entry.position}`;
      if (entry.file === 'primary' || entry.file === 'image') {
        assert.ok(dirty.includes(entry.position! / regionSize) && entry.length === regionSize, where);
      } else if (entry.file === 'cow') {
        assert.ok(dirty.includes((entry.position! - cowIndexSize) / regionSize), where);
      } else if (entry.file === 'map0' || entry.file === 'map1') {
        // Whole 4096-byte pages: all 256 regions are in page 0.
        assert.ok(entry.position === 0 && entry.length === 4096, where);
      } else if (entry.file === 'digests') {
        assert.ok(entry.position === 0 && entry.length === 4096, where);
      } else {
        assert.equal(entry.file, 'meta', where);
      }
    }
    assert.equal(
      callsSince(mark).filter((entry) => entry.kind === 'write' && entry.file === 'image').length,
      dirty.length,
    );
  });
});

describe('storage errors: E_IO and a poisoned handle', () => {
  const operations: Array<{
    name: string;
    title?: string;
    setup: (v: ReplicatedVolume) => void;
    run: (v: ReplicatedVolume) => void;
    durableCount: number;
  }> = [
    {
      name: 'a first write in a cycle',
      setup: (v) => {
        v.writeRegion(1, label('B1'));
        v.startCycle();
      },
      run: (v) => v.writeRegion(1, label('B2')),
      durableCount: 5,
    },
    { name: 'startCycle', setup: (v) => v.writeRegion(1, label('B1')), run: (v) => v.startCycle(), durableCount: 2 },
    {
      name: 'transfer',
      setup: (v) => {
        v.writeRegion(1, label('B1'));
        v.startCycle();
      },
      run: (v) => v.transfer(1),
      // image write, digest-table page write, image sync, table sync
      durableCount: 4,
    },
    {
      name: 'completeCycle',
      setup: (v) => {
        v.writeRegion(1, label('B1'));
        v.startCycle();
        v.transfer(1);
      },
      run: (v) => v.completeCycle(),
      durableCount: 4,
    },
    {
      name: 'transferRegions',
      setup: (v) => {
        v.writeRegion(1, label('B1'));
        v.startCycle();
      },
      run: (v) => v.transferRegions([1]),
      durableCount: 4,
    },
    {
      // The next bit of the write in the cycle is synced by completion (docs/format.md).
      name: 'completeCycle',
      title: 'completeCycle after a write in the cycle',
      setup: (v) => {
        v.writeRegion(1, label('B1'));
        v.startCycle();
        v.writeRegion(2, label('C1'));
        v.transfer(1);
      },
      run: (v) => v.completeCycle(),
      durableCount: 6,
    },
  ];

  /** The recovered state is one docs/protocol.md section 5 allows after a crash inside the operation (region 1 is the one it touches). */
  function assertAllowed(
    name: string,
    before: VolumeState,
    after: VolumeState,
    recovered: VolumeState,
    context: string,
  ): void {
    if (name === 'startCycle' || name === 'completeCycle') {
      assert.ok(
        isDeepStrictEqual(recovered, before) || isDeepStrictEqual(recovered, after),
        `${context}: neither before nor after`,
      );
      return;
    }
    const region = 1;
    const pick = (state: VolumeState) => ({
      primary: state.primary[region],
      secondary: state.secondary[region],
      current: state.current[region],
      next: state.next[region],
      cow: state.cow[region],
      cowData: state.cowData[region],
    });
    const others = (state: VolumeState) => ({
      phase: state.phase,
      primary: state.primary.filter((_, r) => r !== region),
      secondary: state.secondary.filter((_, r) => r !== region),
      current: [...state.current].filter((_, r) => r !== region),
      next: [...state.next].filter((_, r) => r !== region),
      cowData: state.cowData.filter((_, r) => r !== region),
    });
    assert.deepEqual(others(recovered), others(before), `${context}: another region changed`);
    const [b, a, r] = [pick(before), pick(after), pick(recovered)];
    if (name === 'transfer' || name === 'transferRegions') {
      assert.deepEqual({ ...r, secondary: null }, { ...b, secondary: null }, `${context}: more than S changed`);
      assert.ok(r.secondary === b.secondary || r.secondary === a.secondary, `${context}: S is neither old nor new`);
      return;
    }
    // A write: P old or new, X and W each before or after; new data only with X set and W preserved.
    assert.equal(r.secondary, b.secondary);
    assert.equal(r.current, b.current);
    assert.ok(r.primary === b.primary || r.primary === a.primary, `${context}: P is neither old nor new`);
    assert.ok(r.next === b.next || r.next === a.next, `${context}: X`);
    assert.ok(
      (r.cow === b.cow && r.cowData === b.cowData) || (r.cow === a.cow && r.cowData === a.cowData),
      `${context}: W`,
    );
    if (r.primary !== b.primary)
      assert.ok(r.next === a.next && r.cowData === a.cowData, `${context}: new data without its bit or its copy`);
  }

  for (const operation of operations) {
    test(`${operation.title ?? operation.name}: a failure at each durable call gives E_IO, poisons, and reopening recovers`, () => {
      const reference = createVolume(4, regionSize, 'reference');
      operation.setup(reference);
      const before = reference.state();
      const mark = recorder.mark();
      operation.run(reference);
      assert.equal(durableSince(mark).length, operation.durableCount);
      const after = reference.state();
      for (let k = 0; k < operation.durableCount; k++) {
        let v = createVolume(4, regionSize, `vol-${k}`);
        operation.setup(v);
        storage.failAt(k, storageError(k % 2 === 0 ? 'ENOSPC' : 'EIO'));
        expectCode(() => operation.run(v), 'E_IO', /ENOSPC|EIO/);
        expectCode(() => v.readRegion(0), 'E_IO', /reopen/);
        expectCode(() => v.state(), 'E_IO');
        expectCode(() => v.writeRegion(0, label('x')), 'E_IO');
        v = reopen(v);
        const recovered = v.state();
        assertAllowed(operation.name, before, after, recovered, `${operation.name}, failure at durable call ${k}`);
        // INV-COVER holds after recovery.
        for (let region = 0; region < 4; region++) {
          if (recovered.primary[region] !== recovered.secondary[region]) {
            assert.ok(
              recovered.current[region] === '1' || recovered.next[region] === '1',
              `k=${k}: region ${region} uncovered`,
            );
          }
        }
        // The recovered volume works: at most two cycles bring S to P (LIVENESS).
        for (let cycles = 0; cycles < 2; cycles++) {
          if (v.phase === 'idle') v.startCycle();
          for (const region of v.currentRegions()) v.transfer(region);
          v.completeCycle();
        }
        const final = v.state();
        assert.deepEqual(final.secondary, final.primary, `k=${k}`);
      }
    });
  }

  test('anything else thrown by the storage travels up untouched and poisons the handle', () => {
    const v = createVolume();
    const crash = { simulated: 'crash' };
    storage.failAt(0, crash);
    assert.throws(
      () => v.writeRegion(0, label('x')),
      (error: unknown) => error === crash,
    );
    expectCode(() => v.readRegion(0), 'E_IO');
  });
});
