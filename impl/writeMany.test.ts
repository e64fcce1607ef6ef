// The NBD write path of the volume (writeMany and flush, docs/format.md "The buffered
// write path"): judged before any I/O, group commit (one sync of the COW file or of
// the map for a whole batch, none of P until flush), sub-region writes, overlapping
// writes, the swap that syncs P first, close, a poisoned handle, and what a cycle
// sends after buffered writes. The I/O is read from the recording storage double
// (harness/storage/), over the memory double.

import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { beforeEach, describe, test } from 'node:test';
import { CowmapError, type ErrorCode } from './errors.ts';
import { ReplicatedVolume, type ByteWrite } from './replicatedVolume.ts';
import { sha256Hex } from './checksum.ts';
import {
  FailingStorage,
  MemoryStorage,
  RecordingStorage,
  type StorageCall,
} from '../harness/storage/storageDoubles.ts';

const regions = 8;
const regionSize = 1024;
const dir = '/volume';

let memory: MemoryStorage;
let recorder: RecordingStorage;
let failing: FailingStorage;
let volume: ReplicatedVolume;

beforeEach(() => {
  memory = new MemoryStorage();
  recorder = new RecordingStorage(memory);
  failing = new FailingStorage(recorder);
  volume = ReplicatedVolume.create(failing, dir, { regions, regionSize });
});

/** `length` bytes of `value`. */
function filled(length: number, value: number): Uint8Array {
  return new Uint8Array(length).fill(value);
}

/** A region whose every byte says which region and which version it is. */
function regionContent(region: number, version: number): Uint8Array {
  return filled(regionSize, (region * 16 + version) & 0xff);
}

/** The calls that `body` makes, as "kind file" (reads and opens left out unless asked), in order. */
function callsOf(body: () => void, options: { reads?: boolean } = {}): string[] {
  const mark = recorder.mark();
  body();
  return recorder
    .since(mark)
    .filter((call: StorageCall) => call.kind !== 'open' && (options.reads === true || call.kind !== 'read'))
    .map((call) => `${call.kind} ${basename(call.path)}`);
}

function countOf(calls: readonly string[], call: string): number {
  return calls.filter((each) => each === call).length;
}

function expectCode(call: () => unknown, code: ErrorCode): void {
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof CowmapError, `expected a CowmapError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

/** Every region written (durably) with version 0 of its content, and one cycle run, so that S = P. */
function settle(): void {
  for (let region = 0; region < regions; region++) volume.writeRegion(region, regionContent(region, 0));
  runOneCycle();
}

function runOneCycle(): void {
  volume.startCycle();
  volume.transferRegions(volume.currentRegions());
  volume.completeCycle();
}

describe('writeMany is judged before any I/O', () => {
  test('a write out of range anywhere in the list: E_RANGE, no call at all, nothing changed', () => {
    settle();
    const before = volume.read(0, regions * regionSize);
    const writes: ByteWrite[] = [
      { offset: 0, bytes: filled(10, 0xaa) },
      { offset: regions * regionSize - 5, bytes: filled(10, 0xbb) },
    ];
    const calls = callsOf(() => expectCode(() => volume.writeMany(writes), 'E_RANGE'), { reads: true });
    assert.deepEqual(calls, []);
    assert.deepEqual(volume.read(0, regions * regionSize), before);
    assert.deepEqual(volume.nextRegions(), []);
  });

  test('a write that is not bytes, a negative offset, a list that is not an array: refused with no call', () => {
    const bad: unknown[] = [
      [
        { offset: 0, bytes: filled(4, 1) },
        { offset: 8, bytes: 'text' },
      ],
      [{ offset: -1, bytes: filled(4, 1) }],
      [{ offset: 0.5, bytes: filled(4, 1) }],
      'not a list',
    ];
    const codes: ErrorCode[] = ['E_BAD_REQUEST', 'E_RANGE', 'E_RANGE', 'E_BAD_REQUEST'];
    bad.forEach((writes, index) => {
      const calls = callsOf(() => expectCode(() => volume.writeMany(writes as ByteWrite[]), codes[index]!), {
        reads: true,
      });
      assert.deepEqual(calls, [], `case ${index}`);
    });
    assert.deepEqual(volume.read(0, 16), filled(16, 0));
  });

  test('writes of zero bytes touch nothing: no call, and a flush after them does none either', () => {
    const calls = callsOf(
      () => {
        volume.writeMany([{ offset: 0, bytes: new Uint8Array(0) }]);
        volume.writeMany([]);
        volume.flush();
      },
      { reads: true },
    );
    assert.deepEqual(calls, []);
  });
});

describe('group commit', () => {
  test('replicating: N first writes in a cycle cost ONE sync of the COW file, none of P or the maps', () => {
    settle();
    volume.startCycle();
    const writes = [1, 3, 4, 6].map((region) => ({ offset: region * regionSize + 100, bytes: filled(200, 0xc0) }));
    const calls = callsOf(() => volume.writeMany(writes));
    assert.equal(countOf(calls, 'sync cow'), 1, calls.join(', '));
    assert.equal(countOf(calls, 'write cow'), 8, 'a slot and an entry per region');
    assert.deepEqual(
      calls.filter((call) => !call.endsWith(' cow')),
      writes.map(() => 'write primary'),
      'the writes own bytes, after the COW sync, and nothing else',
    );
    assert.equal(calls.indexOf('sync cow'), 8, 'the COW sync comes before the first write of P');
    assert.deepEqual(volume.preservedRegions(), [1, 3, 4, 6]);
    assert.deepEqual(volume.nextRegions(), [1, 3, 4, 6], 'the next bits are set (deferred)');
    // A second batch on the same regions: preserved already, so only P is written.
    assert.deepEqual(
      callsOf(() => volume.writeMany(writes)),
      writes.map(() => 'write primary'),
    );
  });

  test('idle: N clear next bits cost ONE write of the map page and ONE sync of the map; none of P', () => {
    const writes = [0, 2, 5].map((region) => ({ offset: region * regionSize, bytes: filled(regionSize, 7) }));
    const calls = callsOf(() => volume.writeMany(writes));
    const maps = calls.filter((call) => / map[01]$/.test(call));
    assert.equal(maps.length, 2, calls.join(', '));
    assert.match(maps[0]!, /^write map[01]$/);
    assert.match(maps[1]!, /^sync map[01]$/);
    assert.equal(countOf(calls, 'sync primary'), 0);
    assert.equal(countOf(calls, 'write cow') + countOf(calls, 'sync cow'), 0, 'no COW I/O while idle');
    assert.deepEqual(calls.slice(2), ['write primary', 'write primary', 'write primary']);
    assert.deepEqual(volume.nextRegions(), [0, 2, 5]);
    // The bits are set now: a second batch writes P only.
    assert.deepEqual(
      callsOf(() => volume.writeMany(writes)),
      ['write primary', 'write primary', 'write primary'],
    );
  });

  test('flush: one sync of P after buffered writes, then no I/O at all while nothing is unsynced', () => {
    assert.deepEqual(
      callsOf(() => volume.flush(), { reads: true }),
      [],
      'nothing written yet',
    );
    volume.writeMany([{ offset: 10, bytes: filled(20, 3) }]);
    assert.deepEqual(
      callsOf(() => volume.flush(), { reads: true }),
      ['sync primary'],
    );
    assert.deepEqual(
      callsOf(() => volume.flush(), { reads: true }),
      [],
    );
  });
});

describe('what writeMany writes', () => {
  test('a sub-region write changes only its bytes of P; the COW copy holds the whole old region', () => {
    settle();
    volume.startCycle();
    const region = 2;
    const old = regionContent(region, 0);
    const start = region * regionSize + 300;
    const calls = recorder.mark();
    volume.writeMany([{ offset: start, bytes: filled(100, 0xee) }]);
    const primaryWrites = recorder
      .since(calls)
      .filter((call) => call.kind === 'write' && basename(call.path) === 'primary');
    assert.deepEqual(
      primaryWrites.map((call) => call.length),
      [100],
      'P is written at the bytes given, not as a whole region',
    );
    const expected = old.slice();
    expected.fill(0xee, 300, 400);
    assert.deepEqual(volume.readRegion(region), expected);
    assert.equal(volume.state().cowData[region], sha256Hex(old), 'W holds the whole region as the cycle found it');
    volume.transferRegions(volume.currentRegions());
    assert.deepEqual(volume.readRegion(region, 'secondary'), old);
  });

  test('a write across regions preserves both regions and leaves the bytes around it alone', () => {
    settle();
    volume.startCycle();
    const start = 3 * regionSize - 50;
    volume.writeMany([{ offset: start, bytes: filled(100, 0x11) }]);
    assert.deepEqual(volume.preservedRegions(), [2, 3]);
    assert.deepEqual(volume.read(start - 1, 102), Uint8Array.from([2 * 16, ...filled(100, 0x11), 3 * 16]));
  });

  test('overlapping writes in one call: applied in the order given, the later wins', () => {
    volume.writeMany([
      { offset: 0, bytes: filled(200, 0xa1) },
      { offset: 100, bytes: filled(200, 0xb2) },
      { offset: 50, bytes: filled(10, 0xc3) },
    ]);
    const got = volume.read(0, 400);
    const expected = new Uint8Array(400);
    expected.fill(0xa1, 0, 100);
    expected.fill(0xb2, 100, 300);
    expected.fill(0xc3, 50, 60);
    assert.deepEqual(got, expected);
  });

  test('reads see unflushed writes, on both read paths', () => {
    volume.writeMany([{ offset: regionSize + 5, bytes: filled(3, 9) }]);
    assert.deepEqual(volume.read(regionSize + 4, 5), Uint8Array.from([0, 9, 9, 9, 0]));
    assert.deepEqual(volume.readRegion(1).subarray(4, 9), Uint8Array.from([0, 9, 9, 9, 0]));
  });
});

describe('the maps as BLOCK_STATUS asks them', () => {
  test('hasNext and hasCurrent follow X and C; a region out of range is E_RANGE, a closed volume E_PHASE', () => {
    volume.writeMany([{ offset: 2 * regionSize, bytes: filled(1, 1) }]);
    assert.deepEqual([volume.hasNext(2), volume.hasNext(3), volume.hasCurrent(2)], [true, false, false]);
    volume.startCycle();
    assert.deepEqual([volume.hasNext(2), volume.hasCurrent(2), volume.hasCurrent(3)], [false, true, false]);
    expectCode(() => volume.hasNext(regions), 'E_RANGE');
    expectCode(() => volume.hasCurrent(-1), 'E_RANGE');
    expectCode(() => volume.hasNext(0.5), 'E_RANGE');
    volume.close();
    expectCode(() => volume.hasNext(0), 'E_PHASE');
  });
});

describe('durability points', () => {
  test('the swap after unflushed writes syncs P first, then the metadata; without them it does not sync P', () => {
    volume.writeMany([{ offset: 0, bytes: filled(10, 1) }]);
    const calls = callsOf(() => volume.startCycle());
    assert.equal(calls[0], 'sync primary', calls.join(', '));
    assert.equal(countOf(calls, 'sync primary'), 1);
    assert.ok(calls.length > 1, 'the metadata update follows');
    volume.transferRegions(volume.currentRegions());
    volume.completeCycle();
    assert.equal(
      countOf(
        callsOf(() => volume.startCycle()),
        'sync primary',
      ),
      0,
      'nothing unsynced: no sync of P',
    );
    assert.deepEqual(
      callsOf(() => volume.flush(), { reads: true }),
      [],
      'the swap left nothing to flush',
    );
  });

  test('close syncs buffered writes, and they are there after reopening', () => {
    volume.writeMany([{ offset: 4 * regionSize + 1, bytes: filled(5, 0x5a) }]);
    const calls = callsOf(() => volume.close());
    assert.equal(countOf(calls, 'sync primary'), 1, calls.join(', '));
    const reopened = ReplicatedVolume.open(memory, dir);
    assert.deepEqual(reopened.read(4 * regionSize, 7), Uint8Array.from([0, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0]));
    reopened.close();
  });

  test('a poisoned handle does not sync on close (a retry after a failed fdatasync can lie)', () => {
    volume.writeMany([{ offset: 0, bytes: filled(10, 1) }]);
    failing.failWhen((call) => call.kind === 'write' && basename(call.path) === 'primary', 'EIO');
    expectCode(() => volume.writeMany([{ offset: 20, bytes: filled(10, 2) }]), 'E_IO');
    expectCode(() => volume.flush(), 'E_IO');
    const calls = callsOf(() => volume.close());
    assert.equal(countOf(calls, 'sync primary'), 0, calls.join(', '));
  });
  test('a close whose sync of P fails reports E_IO and still closes: the lock is released, a reopen recovers', () => {
    volume.writeMany([{ offset: 0, bytes: filled(10, 1) }]);
    failing.failWhen((call) => call.kind === 'sync' && basename(call.path) === 'primary', 'EIO');
    expectCode(() => volume.close(), 'E_IO');
    const reopened = ReplicatedVolume.open(memory, dir);
    reopened.close();
    volume.close();
  });
});

describe('cycles after buffered writes', () => {
  test('the cycle after writeMany sends P@swap, not the writes made during it', () => {
    settle();
    const region = 5;
    const atSwap = regionContent(region, 1);
    volume.writeMany([{ offset: region * regionSize, bytes: atSwap }]);
    volume.startCycle();
    assert.deepEqual(volume.currentRegions(), [region]);
    volume.writeMany([{ offset: region * regionSize + 10, bytes: filled(10, 0xfe) }]);
    volume.transferRegions(volume.currentRegions());
    assert.deepEqual(volume.readRegion(region, 'secondary'), atSwap, 'S = P@swap');
    volume.completeCycle();
    assert.deepEqual(volume.nextRegions(), [region], 'the write during the cycle is in X');
    runOneCycle();
    for (let each = 0; each < regions; each++) {
      assert.deepEqual(volume.readRegion(each, 'secondary'), volume.readRegion(each), `S = P, region ${each}`);
    }
  });
});
