// Tests of the crash layer itself (harness/crash/crashStorage.ts): paths, the count
// and the log of durable calls, failpoints, injected faults, process crashes, locks,
// bounds; over the independent node:fs storage of crashTestFiles.ts, and once over
// impl/nodeStorage.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { isSameOrAncestor, movedPath, normalizePath, parentDir } from './crashPaths.ts';
import { SimulatedCrash } from './crashReport.ts';
import { CrashStorage } from './crashStorage.ts';
import { all, bytes, durableFile, FsStorage, fileBytes, fresh, none, tempDir } from './crashTestFiles.ts';

// ----- paths -----------------------------------------------------------------

test('paths are normalized lexically', () => {
  assert.equal(normalizePath('/a//b/./c/../d'), '/a/b/d');
  assert.equal(normalizePath('a/../..'), '..');
  assert.equal(normalizePath('./'), '.');
  assert.equal(parentDir('/a/b'), '/a');
  assert.equal(parentDir('/a'), '/');
  assert.equal(parentDir('a'), '.');
  assert.equal(normalizePath('/a/b/'), '/a/b', 'no trailing slash');
  assert.equal(normalizePath('/'), '/');
  assert.throws(() => normalizePath(''), /empty path/);
});

test('a rename moves the names under it; ancestry is by whole names', () => {
  assert.equal(isSameOrAncestor('/a', '/a/b'), true);
  assert.equal(isSameOrAncestor('/a', '/ab'), false);
  assert.equal(isSameOrAncestor('/', '/a'), true);
  assert.equal(isSameOrAncestor('.', 'a/b'), true);
  assert.equal(isSameOrAncestor('.', '../a'), false);
  assert.equal(isSameOrAncestor('.', '/a'), false);
  assert.equal(movedPath('/a/b/c', '/a/b', '/x'), '/x/c');
  assert.equal(movedPath('/a/b', '/a/b', '/x'), '/x');
  assert.equal(movedPath('/a/bc', '/a/b', '/x'), '/a/bc');
});

// ----- counting and the log ----------------------------------------------------

test('each durable call kind counts once; reads, exists, list, lock, size, close and plain open do not', () => {
  const { dir, storage } = fresh();
  const file = nodePath.join(dir, 'f');
  const expectCount = (expected: number, what: string): void => assert.equal(storage.takeIoCount(), expected, what);

  storage.mkdir(nodePath.join(dir, 'sub'));
  expectCount(1, 'mkdir');
  const handle = storage.open(file, { create: true });
  expectCount(1, 'create');
  handle.write(0, bytes(10, 1));
  expectCount(1, 'write');
  handle.sync();
  expectCount(1, 'sync');
  handle.truncate(4);
  expectCount(1, 'truncate');
  storage.syncDir(dir);
  expectCount(1, 'syncDir');
  storage.rename(file, `${file}2`);
  expectCount(1, 'rename');
  handle.read(0, 4);
  handle.size();
  storage.exists(file);
  storage.list(dir);
  const lock = storage.lock(dir);
  lock?.release();
  handle.close();
  storage.open(`${file}2`, { create: false }).close();
  expectCount(0, 'read, size, exists, list, lock, release, close, open without create');
  storage.unlink(`${file}2`);
  expectCount(1, 'unlink');
  assert.equal(storage.ioCount, 8);

  const kinds = storage.log.map((entry) => entry.kind);
  assert.deepEqual(kinds, ['mkdir', 'create', 'write', 'sync', 'truncate', 'syncDir', 'rename', 'unlink']);
  assert.deepEqual(
    storage.log.map((entry) => entry.seq),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  const write = storage.log[2]!;
  assert.equal(write.position, 0);
  assert.equal(write.length, 10);
  assert.equal(storage.log[4]!.length, 4, 'truncate logs the new length');
  assert.equal(storage.log[6]!.to, `${file}2`);
});

test('a call that the wrapped storage fails is still counted and logged with its code', () => {
  const { dir, storage } = fresh();
  durableFile(storage, dir, 'f', bytes(1, 1)).close();
  storage.takeIoCount();
  storage.clearLog();
  assert.throws(() => storage.open(nodePath.join(dir, 'f'), { create: true }), { code: 'EEXIST' });
  assert.equal(storage.takeIoCount(), 1);
  assert.equal(storage.log[0]!.error, 'EEXIST');
});

test('the I/O log is bounded by ioLogMax and says how much it dropped', () => {
  const dir = tempDir();
  const storage = new CrashStorage(new FsStorage(), { ioLogMax: 3 });
  const handle = storage.open(nodePath.join(dir, 'f'), { create: true });
  for (let i = 0; i < 5; i++) handle.write(i, bytes(1, i));
  assert.equal(storage.log.length, 3);
  assert.equal(storage.logDroppedCount, 3);
  assert.deepEqual(
    storage.log.map((entry) => entry.seq),
    [1, 2, 3],
  );
  const taken = storage.takeLog();
  assert.equal(taken.length, 3);
  assert.equal(storage.log.length, 0);
  assert.equal(storage.logDroppedCount, 0);
  handle.sync();
  assert.deepEqual(
    storage.log.map((entry) => entry.kind),
    ['sync'],
  );
});

// ----- failpoints --------------------------------------------------------------

test('a crash after k throws SimulatedCrash from call k+1 and does not perform it', () => {
  for (const mode of ['process', 'power'] as const) {
    const { dir, storage } = fresh();
    const path = nodePath.join(dir, 'f');
    const handle = durableFile(storage, dir, 'f', bytes(3, 0));
    storage.armCrash({ afterIo: 2, mode, keepWrite: all });
    handle.write(0, bytes(1, 1));
    handle.write(1, bytes(1, 2));
    const countBefore = storage.ioCount;
    assert.throws(() => handle.write(2, bytes(1, 3)), SimulatedCrash, mode);
    assert.equal(storage.ioCount, countBefore, 'the crashing call is not counted');
    assert.deepEqual([...fileBytes(path)], [1, 2, 0], `${mode}: writes 1 and 2 kept, write 3 never made`);
  }
});

test('a crash after k = 0 comes before the first durable call; calls that are not durable pass until then', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(2, 7));
  storage.armCrash({ afterIo: 0, mode: 'process' });
  assert.deepEqual([...handle.read(0, 2)], [7, 7]);
  assert.equal(storage.exists(path), true);
  assert.throws(() => handle.write(0, bytes(2, 9)), SimulatedCrash);
  assert.deepEqual([...fileBytes(path)], [7, 7]);
});

test('after call k any next call crashes, reads included; crashIfDue crashes at the end of a request', () => {
  {
    const { dir, storage } = fresh();
    const handle = durableFile(storage, dir, 'f', bytes(2, 7));
    storage.armCrash({ afterIo: 1, mode: 'process' });
    handle.write(0, bytes(1, 1));
    assert.equal(storage.crashDue, true);
    assert.throws(() => handle.read(0, 1), SimulatedCrash);
  }
  {
    const { dir, storage } = fresh();
    const handle = durableFile(storage, dir, 'f', bytes(2, 7));
    storage.armCrash({ afterIo: 1, mode: 'process' });
    storage.crashIfDue(); // not due yet: no throw
    handle.write(0, bytes(1, 1));
    assert.throws(() => storage.crashIfDue(), SimulatedCrash);
    assert.equal(storage.isCrashed, true);
  }
});

test('after a crash every call on the storage, its handles and its locks throws SimulatedCrash', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(4, 1));
  const lock = storage.lock(dir);
  assert.ok(lock !== null);
  storage.crashNow('process');
  const calls: Array<[string, () => unknown]> = [
    ['open', () => storage.open(path, { create: false })],
    ['open create', () => storage.open(`${path}x`, { create: true })],
    ['exists', () => storage.exists(path)],
    ['mkdir', () => storage.mkdir(`${path}d`)],
    ['syncDir', () => storage.syncDir(dir)],
    ['rename', () => storage.rename(path, `${path}y`)],
    ['unlink', () => storage.unlink(path)],
    ['list', () => storage.list(dir)],
    ['lock', () => storage.lock(dir)],
    ['read', () => handle.read(0, 1)],
    ['write', () => handle.write(0, bytes(1, 2))],
    ['sync', () => handle.sync()],
    ['truncate', () => handle.truncate(0)],
    ['size', () => handle.size()],
    ['close', () => handle.close()],
    ['release', () => lock.release()],
    ['crashNow', () => storage.crashNow('power')],
    ['crashIfDue', () => storage.crashIfDue()],
  ];
  for (const [name, call] of calls) assert.throws(call, SimulatedCrash, name);
  assert.deepEqual([...fileBytes(path)], [1, 1, 1, 1], 'nothing was done');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['f']);
});

test('disarm cancels an armed crash and fault', () => {
  const { dir, storage } = fresh();
  const handle = durableFile(storage, dir, 'f', bytes(1, 0));
  storage.armCrash({ afterIo: 0, mode: 'process' });
  storage.armFault({ afterIo: 0, code: 'EIO' });
  storage.disarm();
  handle.write(0, bytes(1, 5));
  handle.sync();
  assert.equal(storage.isCrashed, false);
});

// ----- faults ------------------------------------------------------------------

test('ENOSPC and EIO fail the (k+1)-th durable call once, without writing, and count it', () => {
  for (const code of ['ENOSPC', 'EIO'] as const) {
    const { dir, storage } = fresh();
    const path = nodePath.join(dir, 'f');
    const handle = durableFile(storage, dir, 'f', bytes(4, 1));
    storage.takeIoCount();
    storage.armFault({ afterIo: 1, code });
    handle.write(0, bytes(1, 2));
    assert.throws(
      () => handle.write(1, bytes(3, 3)),
      (error: unknown) => (error as { code?: string }).code === code && !(error instanceof SimulatedCrash),
    );
    assert.deepEqual([...fileBytes(path)], [2, 1, 1, 1], `${code}: the failed write wrote nothing`);
    assert.equal(storage.takeIoCount(), 2, 'the failed call is counted');
    assert.equal(storage.log.at(-1)!.error, code);
    handle.write(1, bytes(3, 3)); // once: the next call works
    assert.deepEqual([...fileBytes(path)], [2, 3, 3, 3]);
    // The failed write is not an unsynced write a power crash could bring back.
    assert.equal(storage.unsyncedWriteCount(), 2);
  }
});

test('a fault on sync leaves the writes unsynced', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(2, 1));
  handle.write(0, bytes(2, 2));
  storage.armFault({ afterIo: 0, code: 'EIO' });
  assert.throws(() => handle.sync(), { code: 'EIO' });
  assert.equal(storage.unsyncedWriteCount(), 1);
  storage.crashNow('power', { keepWrite: none });
  assert.deepEqual([...fileBytes(path)], [1, 1]);
});

// ----- process mode ------------------------------------------------------------

test('process mode keeps every write, synced or not, and every namespace change', () => {
  const { dir, storage } = fresh();
  const handle = durableFile(storage, dir, 'f', bytes(4, 1));
  handle.write(0, bytes(2, 2));
  handle.write(6, bytes(2, 3));
  const other = storage.open(nodePath.join(dir, 'g'), { create: true });
  other.write(0, bytes(1, 4));
  storage.rename(nodePath.join(dir, 'g'), nodePath.join(dir, 'h'));
  const report = storage.crashNow('process', { seed: 1 });
  assert.deepEqual(report.writes, []);
  assert.deepEqual([...fileBytes(nodePath.join(dir, 'f'))], [2, 2, 1, 1, 0, 0, 3, 3]);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['f', 'h']);
  assert.deepEqual([...fileBytes(nodePath.join(dir, 'h'))], [4]);
});

// ----- locks and recovery --------------------------------------------------------

test('a crash releases the locks taken through the storage, so a fresh storage can lock', () => {
  for (const mode of ['process', 'power'] as const) {
    const { dir, storage } = fresh();
    const handle = durableFile(storage, dir, 'f', bytes(1, 1));
    const lock = storage.lock(dir);
    assert.ok(lock !== null);
    const other = new CrashStorage(new FsStorage());
    assert.equal(other.lock(dir), null, 'held while the first storage lives');
    storage.armCrash({ afterIo: 0, mode });
    assert.throws(() => handle.write(0, bytes(1, 2)), SimulatedCrash);
    const recovered = new CrashStorage(new FsStorage());
    const relocked = recovered.lock(dir);
    assert.ok(relocked !== null, `${mode}: the lock was released by the crash`);
    relocked.release();
  }
});

test('the SimulatedCrash of a failpoint carries its report; the files are already the post-crash state', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(4, 1));
  handle.write(0, bytes(4, 2));
  storage.armCrash({ afterIo: 0, mode: 'power', keepWrite: none });
  let caught: unknown;
  try {
    handle.sync();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof SimulatedCrash);
  assert.equal(caught.mode, 'power');
  assert.deepEqual(
    caught.report?.writes.map((write) => write.kept),
    [false],
  );
  assert.deepEqual(fileBytes(path), bytes(4, 1), 'the sync never happened, the write was lost');
  // Recovery on a fresh storage sees the durable content.
  const recovered = new CrashStorage(new FsStorage());
  const reopened = recovered.open(path, { create: false });
  assert.deepEqual(reopened.read(0, 4), bytes(4, 1));
  reopened.close();
});

test('ordering can be checked from the log (a sync of one file before a write of another)', () => {
  const { dir, storage } = fresh();
  const cow = durableFile(storage, dir, 'cow', bytes(1, 0));
  const primary = durableFile(storage, dir, 'primary', bytes(1, 0));
  storage.clearLog();
  cow.write(0, bytes(1, 1));
  cow.sync();
  primary.write(0, bytes(1, 2));
  const log = storage.takeLog();
  const cowSync = log.findIndex((entry) => entry.kind === 'sync' && entry.path.endsWith('cow'));
  const primaryWrite = log.findIndex((entry) => entry.kind === 'write' && entry.path.endsWith('primary'));
  assert.ok(cowSync >= 0 && primaryWrite > cowSync);
});

test('bounds: too much unsynced data throws a clear error instead of growing without limit', () => {
  const dir = tempDir();
  const storage = new CrashStorage(new FsStorage(), { unsyncedBytesMax: 1000 });
  const handle = storage.open(nodePath.join(dir, 'f'), { create: true });
  handle.write(0, bytes(600, 1));
  assert.throws(() => handle.write(0, bytes(600, 1)), /unsyncedBytesMax/);
  handle.sync();
  handle.write(0, bytes(400, 1)); // room again after the sync
});

// ----- over the project's own node:fs storage ------------------------------------------

test('works the same over impl/nodeStorage.ts: lost unsynced write, vanished create, released lock', async () => {
  // Imported here rather than at the top so that the rest of this file does not
  // depend on impl/ (written alongside); a failure to import fails this test only.
  const { NodeStorage } = await import('../../impl/nodeStorage.ts');
  const dir = tempDir();
  const storage = new CrashStorage(new NodeStorage());
  const lock = storage.lock(dir);
  assert.ok(lock !== null);
  const durablePath = nodePath.join(dir, 'durable');
  const handle = durableFile(storage, dir, 'durable', bytes(1024, 1));
  handle.write(0, bytes(1024, 2));
  const created = storage.open(nodePath.join(dir, 'created'), { create: true });
  created.write(0, bytes(10, 3));
  created.sync();
  storage.armCrash({ afterIo: 0, mode: 'power', keepWrite: none, keepNamespace: none });
  assert.throws(() => handle.sync(), SimulatedCrash);
  assert.deepEqual(fileBytes(durablePath), bytes(1024, 1));
  assert.equal(fs.existsSync(nodePath.join(dir, 'created')), false);
  const recovered = new CrashStorage(new NodeStorage());
  const relock = recovered.lock(dir);
  assert.ok(relock !== null, 'the crash released the lock');
  relock.release();
});
