// The receiver's store (receiverStore.ts, docs/format.md "The receiver's files"): a
// cycle commits atomically, readLatest overlays the journal byte for byte, foreign
// and out-of-cycle writes are refused, a reopen keeps an uncommitted journal and
// applies a committed one, the journal is compacted within its bound. Random parts
// print their seed (COWMAP_RECEIVER_SEED replays).

import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CrashStorage } from '../../harness/crash/crashStorage.ts';
import { isSimulatedCrash } from '../../harness/crash/crashReport.ts';
import { MemoryStorage } from '../../harness/storage/memoryStorage.ts';
import { type ErrorCode, isCowmapError } from '../errors.ts';
import { controlOffsetOf, type ControlState, encodeControlBlock, exportSizeOf } from '../remote/controlBlock.ts';
import { makeTemporaryDir, NodeStorage, removeTree } from '../nodeStorage.ts';
import type { Storage } from '../storage.ts';
import { flipByte } from '../testFiles.ts';
import { ReceiverStore } from './receiverStore.ts';

const dir = '/receiver';
const identity = { volumeId: new Uint8Array(16).fill(3), regions: 8, regionSize: 1024 };
const imageSize = identity.regions * identity.regionSize;
const exportSize = exportSizeOf(identity);
const controlOffset = controlOffsetOf(identity);
const seed = Number(process.env.COWMAP_RECEIVER_SEED ?? 20261130);

function block(cycle: number, state: ControlState, volumeId = identity.volumeId): Uint8Array {
  return encodeControlBlock({ ...identity, volumeId, state, cycle, swapTimeMs: 1000 + cycle, batch: 0 });
}

function filled(length: number, value: number): Uint8Array {
  return new Uint8Array(length).fill(value);
}

function refused(code: ErrorCode, run: () => void): void {
  assert.throws(run, (error: unknown) => isCowmapError(error, code));
}

/** A store with cycle 0 (zeros) committed, as a primary's claim leaves it. */
function claimed(storage: Storage = new MemoryStorage(), options = {}, at = dir): ReceiverStore {
  const store = ReceiverStore.create(storage, at, exportSize, options);
  store.write(controlOffset, block(0, 'sending'));
  store.writeZeroes(0, imageSize);
  store.write(controlOffset, block(0, 'complete'));
  store.flush();
  return store;
}

/** A tiny xorshift: the seeded writes of the overlay test. */
function random(from: number): () => number {
  let state = from >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

describe('the receiver store', () => {
  test('a cycle commits atomically: readConsistent changes only at the complete signal', () => {
    const store = claimed();
    assert.deepEqual(store.status().completedCycle, 0);
    store.write(controlOffset, block(1, 'sending'));
    store.write(1024, filled(1024, 7));
    store.flush();
    assert.deepEqual(store.readLatest(1024, 4), filled(4, 7));
    assert.deepEqual(store.readConsistent(1024, 4), filled(4, 0));
    assert.equal(store.status().runningCycle, 1);
    store.write(controlOffset, block(1, 'complete'));
    assert.deepEqual(store.readConsistent(1024, 1024), filled(1024, 7));
    assert.deepEqual(store.status(), {
      exportSize,
      identity: store.status().identity,
      completedCycle: 1,
      completedSwapTimeMs: 1001,
      runningCycle: null,
      journalBytes: 0,
    });
    assert.deepEqual(store.readLatest(controlOffset, 4096), block(1, 'complete'));
    store.close();
  });

  test(`readLatest overlays overlapping writes and zero ranges byte for byte (seed ${seed})`, () => {
    const next = random(seed);
    const store = claimed();
    const consistent = new Uint8Array(imageSize);
    for (let cycle = 1; cycle <= 3; cycle++) {
      const latest = consistent.slice();
      store.write(controlOffset, block(cycle, 'sending'));
      for (let i = 0; i < 40; i++) {
        const offset = Math.floor(next() * imageSize);
        const length = Math.min(imageSize - offset, 1 + Math.floor(next() * 3000));
        if (next() < 0.2) {
          store.writeZeroes(offset, length);
          latest.fill(0, offset, offset + length);
        } else {
          const bytes = filled(length, 1 + Math.floor(next() * 250));
          store.write(offset, bytes);
          latest.set(bytes, offset);
        }
        const at = Math.floor(next() * imageSize);
        const span = Math.min(imageSize - at, Math.floor(next() * 4000));
        assert.deepEqual(store.readLatest(at, span), latest.subarray(at, at + span), `cycle ${cycle} write ${i}`);
        assert.deepEqual(store.readConsistent(at, span), consistent.subarray(at, at + span));
      }
      store.write(controlOffset, block(cycle, 'complete'));
      consistent.set(latest);
      assert.deepEqual(store.readConsistent(0, imageSize), consistent);
    }
    store.close();
  });

  test("another volume's block, a block of another size and a stray control write are refused", () => {
    const store = claimed();
    refused('E_BAD_REQUEST', () => store.write(controlOffset, block(1, 'sending', new Uint8Array(16).fill(9))));
    refused('E_BAD_REQUEST', () => store.write(controlOffset, filled(4096, 1)));
    refused('E_BAD_REQUEST', () => store.write(controlOffset - 512, filled(1024, 1)));
    refused('E_RANGE', () => store.write(exportSize - 10, filled(20, 1)));
    store.close();
    const fresh = ReceiverStore.create(new MemoryStorage(), dir, exportSize + 512);
    refused('E_BAD_REQUEST', () => fresh.write(exportSize + 512 - 4096, block(0, 'sending')));
    fresh.close();
  });

  test('a write outside a cycle, a complete of another cycle and a stale start are refused', () => {
    const store = claimed();
    refused('E_BAD_REQUEST', () => store.write(0, filled(512, 1)));
    refused('E_BAD_REQUEST', () => store.writeZeroes(0, 512));
    refused('E_BAD_REQUEST', () => store.write(controlOffset, block(2, 'complete')));
    store.write(controlOffset, block(1, 'sending'));
    store.write(controlOffset, block(1, 'complete'));
    store.write(controlOffset, block(1, 'complete'));
    refused('E_BAD_REQUEST', () => store.write(controlOffset, block(0, 'sending')));
    store.close();
  });

  test('a start of a cycle below the open journal is refused and keeps it; a repeat start of the last commit', () => {
    const store = claimed();
    store.write(controlOffset, block(1, 'sending'));
    store.write(0, filled(512, 1));
    store.write(controlOffset, block(1, 'complete'));
    store.write(controlOffset, block(2, 'sending'));
    store.write(1024, filled(512, 2));
    store.flush();
    // A stale start of the cycle just completed (an earlier connection's, delivered late)
    // must not drop the journal of cycle 2: the primary confirmed its batch already.
    refused('E_BAD_REQUEST', () => store.write(controlOffset, block(1, 'sending')));
    refused('E_BAD_REQUEST', () => store.write(controlOffset, block(0, 'sending')));
    assert.equal(store.status().runningCycle, 2);
    assert.deepEqual(store.readLatest(1024, 512), filled(512, 2));
    store.write(controlOffset, block(2, 'complete'));
    assert.deepEqual(store.readConsistent(1024, 512), filled(512, 2));
    // A confirmation retried on a new connection after its reply was lost: start and
    // complete of the cycle committed already; the image stays what it was.
    store.write(controlOffset, block(2, 'sending'));
    store.write(controlOffset, block(2, 'complete'));
    assert.deepEqual([store.status().completedCycle, store.status().runningCycle], [2, null]);
    assert.deepEqual(
      store.readConsistent(0, 2048),
      Uint8Array.from([...filled(512, 1), ...filled(512, 0), ...filled(512, 2), ...filled(512, 0)]),
    );
    store.close();
  });

  test('a reopen keeps an uncommitted journal; a later cycle drops it', () => {
    const storage = new MemoryStorage();
    claimed(storage).close();
    let store = ReceiverStore.open(storage, dir);
    store.write(controlOffset, block(1, 'sending'));
    store.write(0, filled(2048, 5));
    store.flush();
    store.close();
    store = ReceiverStore.open(storage, dir);
    assert.equal(store.status().runningCycle, 1);
    assert.deepEqual(store.readLatest(0, 2048), filled(2048, 5));
    assert.deepEqual(store.readConsistent(0, 2048), filled(2048, 0));
    store.write(2048, filled(512, 6));
    store.write(controlOffset, block(1, 'complete'));
    assert.deepEqual(store.readConsistent(0, 2560), Uint8Array.from([...filled(2048, 5), ...filled(512, 6)]));
    store.write(controlOffset, block(2, 'sending'));
    store.write(0, filled(512, 8));
    store.flush();
    store.close();
    store = ReceiverStore.open(storage, dir);
    store.write(controlOffset, block(3, 'sending'));
    assert.deepEqual(store.readLatest(0, 512), filled(512, 5), 'the journal of cycle 2 never committed');
    store.close();
  });

  test('a committed journal is applied by recovery after a crash right after the commit', () => {
    const files = new MemoryStorage();
    const setUp = new CrashStorage(files);
    const store = claimed(setUp);
    store.write(controlOffset, block(1, 'sending'));
    store.write(512, filled(1024, 4));
    store.flush();
    setUp.clearLog();
    store.write(controlOffset, block(1, 'complete'));
    const log = setUp.takeLog();
    const commitSync = log.findIndex((entry) => entry.kind === 'sync' && entry.path.endsWith('/receiver'));
    assert.ok(commitSync > 0, `no state sync in ${JSON.stringify(log)}`);
    store.close();

    // Again from before the complete signal, crashed (process) right after that sync.
    const again = new MemoryStorage();
    const first = new CrashStorage(again);
    const replay = claimed(first);
    replay.write(controlOffset, block(1, 'sending'));
    replay.write(512, filled(1024, 4));
    replay.flush();
    first.armCrash({ afterIo: commitSync + 1, mode: 'power', seed: 1 });
    assert.throws(() => replay.write(controlOffset, block(1, 'complete')), isSimulatedCrash);
    const recovered = ReceiverStore.open(new CrashStorage(again), dir);
    assert.equal(recovered.status().completedCycle, 1);
    assert.deepEqual(recovered.readConsistent(512, 1024), filled(1024, 4));
    assert.equal(recovered.status().runningCycle, null);
    recovered.close();
  });

  test('rewrites past the bound compact the journal and keep every byte', () => {
    const storage = new MemoryStorage();
    const journalBytesMax = 3 * imageSize;
    const store = claimed(storage, { journalBytesMax });
    store.write(controlOffset, block(1, 'sending'));
    for (let round = 0; round < 20; round++) {
      for (let region = 0; region < identity.regions; region++) {
        store.write(region * 1024, filled(1024, (round + region) % 251));
        assert.ok(store.status().journalBytes <= journalBytesMax);
      }
    }
    store.flush();
    const expected = new Uint8Array(imageSize);
    for (let region = 0; region < identity.regions; region++)
      expected.fill((19 + region) % 251, region * 1024, (region + 1) * 1024);
    assert.deepEqual(store.readLatest(0, imageSize), expected);
    store.close();
    const reopened = ReceiverStore.open(storage, dir, { journalBytesMax });
    assert.deepEqual(reopened.readLatest(0, imageSize), expected);
    reopened.write(controlOffset, block(1, 'complete'));
    assert.deepEqual(reopened.readConsistent(0, imageSize), expected);
    reopened.close();
  });

  test("a claim's write-zeroes in 1 MiB chunks, in order or not, holds one extent: a small extent bound suffices", () => {
    const big = { volumeId: identity.volumeId, regions: 8, regionSize: 4 << 20 };
    const chunk = 1 << 20;
    const chunks = (big.regions * big.regionSize) / chunk;
    for (const order of ['ascending', 'descending'] as const) {
      const store = ReceiverStore.create(new MemoryStorage(), dir, exportSizeOf(big), { extentsMax: 4 });
      const start = encodeControlBlock({ ...big, state: 'sending', cycle: 0, swapTimeMs: 0, batch: 0 });
      store.write(controlOffsetOf(big), start);
      for (let i = 0; i < chunks; i++) store.writeZeroes((order === 'ascending' ? i : chunks - 1 - i) * chunk, chunk);
      const complete = encodeControlBlock({ ...big, state: 'complete', cycle: 0, swapTimeMs: 0, batch: 0 });
      store.write(controlOffsetOf(big), complete);
      assert.equal(store.status().completedCycle, 0, order);
      store.close();
    }
  });

  test('create refuses a directory that holds a store or a volume, open one without (E_NOT_FOUND); a read-only open refuses writes', () => {
    const storage = new MemoryStorage();
    claimed(storage).close();
    refused('E_EXISTS', () => ReceiverStore.create(storage, dir, exportSize));
    storage.mkdir('/volume');
    storage.open('/volume/meta', { create: true }).close();
    refused('E_EXISTS', () => ReceiverStore.create(storage, '/volume', exportSize));
    refused('E_NOT_FOUND', () => ReceiverStore.open(storage, '/nothing'));
    refused('E_NOT_FOUND', () => ReceiverStore.open(storage, '/nothing', { readOnly: true }));
    const reader = ReceiverStore.open(storage, dir, { readOnly: true });
    refused('E_BAD_REQUEST', () => reader.write(controlOffset, block(1, 'sending')));
    assert.deepEqual(reader.readConsistent(0, 512), filled(512, 0));
    reader.close();
  });
});

describe('the receiver\'s files on disk (docs/format.md, "The receiver\'s files")', () => {
  test('the files, the slot fields, a torn newest slot, and the lock', () => {
    const root = makeTemporaryDir('cowmap-receiver-');
    const at = join(root, 'dir2');
    const storage = new NodeStorage();
    try {
      const store = claimed(storage, {}, at);
      for (const [name, size] of [
        ['receiver', 1024],
        ['image', exportSize],
        ['journal1', 0],
      ] as const)
        assert.equal(statSync(join(at, name)).size, size, name);
      refused('E_LOCKED', () => ReceiverStore.open(storage, at, { readOnly: true }));
      store.write(controlOffset, block(1, 'sending'));
      store.write(0, filled(512, 9));
      store.write(controlOffset, block(1, 'complete'));
      store.close();
      const slots = readFileSync(join(at, 'receiver'));
      const view = new DataView(slots.buffer, slots.byteOffset, slots.byteLength);
      // The newest slot: sequence 5 (create, start 0, commit 0 and its close, start 1, ...): read both and pick.
      const sequences = [0, 1].map((slot) => Number(view.getBigUint64(slot * 512 + 16, true)));
      const newest = sequences[0]! > sequences[1]! ? 0 : 1;
      assert.equal(slots.subarray(newest * 512, newest * 512 + 8).toString(), 'cowmapRV');
      assert.equal(view.getUint32(newest * 512 + 8, true), 1, 'format version');
      assert.equal(Number(view.getBigUint64(newest * 512 + 24, true)), exportSize);
      assert.equal(Number(view.getBigUint64(newest * 512 + 56, true)), 2, 'completed cycle 1, stored plus one');
      assert.equal(Number(view.getBigUint64(newest * 512 + 80, true)), 0, 'no journal');
      // A torn newest slot: the other one wins, an older state that is still whole.
      flipByte(join(at, 'receiver'), newest * 512 + 100);
      const older = ReceiverStore.open(storage, at, { readOnly: true });
      assert.equal(older.status().completedCycle, 1, 'the slot before the close of the journal');
      assert.deepEqual(older.readConsistent(0, 512), filled(512, 9));
      older.close();
      flipByte(join(at, 'receiver'), (1 - newest) * 512 + 100);
      refused('E_CORRUPT', () => ReceiverStore.open(storage, at));
    } finally {
      removeTree(root);
    }
  });
});
