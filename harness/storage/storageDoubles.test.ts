// Tests of the storage double family (harness/storage/): what each wrapper sees,
// logs, counts or fails, how they compose, and the crash layer over the memory
// storage. Everything runs in memory.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CountingStorage,
  CrashStorage,
  FailingStorage,
  MemoryStorage,
  RecordingStorage,
  type StorageCall,
} from './storageDoubles.ts';
import type { Storage } from '../../impl/storage.ts';

const bytes = (length: number, value: number): Uint8Array => new Uint8Array(length).fill(value);

/** One of each call kind a wrapper sees, and a few it does not (exists, list, lock, size, close). */
function exercise(storage: Storage): void {
  storage.mkdir('/d');
  storage.syncDir('/');
  const handle = storage.open('/d/f', { create: true });
  handle.write(4, bytes(3, 1));
  handle.read(0, 8);
  handle.sync();
  handle.truncate(2);
  handle.size();
  handle.close();
  storage.exists('/d/f');
  storage.list('/d');
  storage.lock('/d')?.release();
  storage.open('/d/f', { create: false, readOnly: true }).close();
  storage.rename('/d/f', '/d/g');
  storage.unlink('/d/g');
  storage.rmdir('/d');
}

const exercised: StorageCall[] = [
  { kind: 'mkdir', path: '/d' },
  { kind: 'syncDir', path: '/' },
  { kind: 'create', path: '/d/f' },
  { kind: 'write', path: '/d/f', position: 4, length: 3 },
  { kind: 'read', path: '/d/f', position: 0, length: 8 },
  { kind: 'sync', path: '/d/f' },
  { kind: 'truncate', path: '/d/f', length: 2 },
  { kind: 'open', path: '/d/f', readOnly: true },
  { kind: 'rename', path: '/d/f', to: '/d/g' },
  { kind: 'unlink', path: '/d/g' },
  { kind: 'rmdir', path: '/d' },
];

test('recording: every open, read and durable call in order, with its path; durableSince leaves opens and reads out', () => {
  const storage = new RecordingStorage(new MemoryStorage());
  storage.mkdir('/x');
  const mark = storage.mark();
  exercise(storage);
  assert.deepEqual(storage.since(mark), exercised);
  assert.deepEqual(
    storage.durableSince(mark).map((call) => call.kind),
    ['mkdir', 'syncDir', 'create', 'write', 'sync', 'truncate', 'rename', 'unlink', 'rmdir'],
  );
  assert.equal(storage.durableCalls, 10, 'the mkdir before the mark counts too');
});

test('counting: bytes, reads, writes, syncs and durable calls; take starts again', () => {
  const storage = new CountingStorage(new MemoryStorage());
  exercise(storage);
  assert.deepEqual(storage.take(), {
    bytesRead: 8,
    bytesWritten: 3,
    readCalls: 1,
    writeCalls: 1,
    syncCalls: 1,
    syncDirCalls: 1,
    durableCalls: 9,
  });
  assert.equal(storage.take().durableCalls, 0);
});

test('fail-at-k: the k-th durable call from now throws an errno-shaped error once, and is not made', () => {
  const memory = new MemoryStorage();
  const storage = new FailingStorage(memory);
  const handle = storage.open('/f', { create: true });
  handle.read(0, 1); // not durable: not counted
  storage.failAt(1, 'EIO');
  handle.write(0, bytes(2, 1));
  assert.throws(() => handle.write(2, bytes(2, 2)), { code: 'EIO', syscall: 'write', path: '/f' });
  assert.equal(memory.fileSize('/f'), 2, 'the failed write wrote nothing');
  handle.write(2, bytes(2, 2)); // once
  assert.equal(memory.fileSize('/f'), 4);
  assert.equal(storage.durableCalls, 4, 'the failed call is counted');
  assert.equal(storage.disarm(), false, 'it fired');
});

test('fail-at-k: a predicate picks the call; anything but a code is thrown as it is; disarm says it never fired', () => {
  const storage = new FailingStorage(new MemoryStorage());
  const marker = { simulated: 'crash' };
  storage.failWhen((call) => call.kind === 'rename', marker);
  storage.open('/a', { create: true }).close();
  assert.throws(
    () => storage.rename('/a', '/b'),
    (error: unknown) => error === marker,
  );
  assert.equal(storage.exists('/a'), true, 'the rename was not made');
  storage.failWhen((_, durableIndex) => durableIndex === 100);
  storage.unlink('/a');
  assert.equal(storage.disarm(), true);
});

test('the wrappers compose: a recorder outside a failing storage logs the failed call, inside it does not', () => {
  const inside = new RecordingStorage(new MemoryStorage());
  const failing = new FailingStorage(inside);
  const outside = new RecordingStorage(failing);
  failing.failAt(1);
  outside.mkdir('/a');
  assert.throws(() => outside.mkdir('/b'), { code: 'ENOSPC' });
  assert.deepEqual(
    outside.durableSince().map((call) => call.path),
    ['/a', '/b'],
  );
  assert.deepEqual(
    inside.durableSince().map((call) => call.path),
    ['/a'],
  );
});

test('the crash layer over the memory storage: a power crash drops an unsynced write and a name never synced', () => {
  const memory = new MemoryStorage();
  const storage = new CrashStorage(new RecordingStorage(memory));
  const handle = storage.open('/f', { create: true });
  handle.write(0, bytes(4, 1));
  handle.sync();
  storage.syncDir('/');
  handle.write(0, bytes(4, 2));
  storage.open('/g', { create: true }).close();
  storage.crashNow('power', { keepWrite: () => false, keepNamespace: () => false });
  assert.deepEqual(memory.filePaths(), ['/f']);
  const reopened = memory.open('/f', { create: false });
  assert.deepEqual(reopened.read(0, 4), bytes(4, 1));
});
