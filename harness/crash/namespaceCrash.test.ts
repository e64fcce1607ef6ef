// Tests of the namespace model of the crash layer (harness/crash/crashStorage.ts):
// creates, unlinks, renames, mkdir and rmdir are durable only once their directories
// are synced, and a power crash keeps any dependency-closed subset of the rest.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { all, bytes, durableFile, fileBytes, fresh, none } from './crashTestFiles.ts';

// ----- power mode: namespace -----------------------------------------------------

test('a created file whose directory was not synced can vanish in a power crash, even with its data synced', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'new');
  const handle = storage.open(path, { create: true });
  handle.write(0, bytes(10, 1));
  handle.sync();
  assert.equal(storage.unsyncedNamespaceCount(), 1);
  const report = storage.crashNow('power', { keepNamespace: none });
  assert.deepEqual(
    report.namespace.map((entry) => [entry.kind, entry.kept]),
    [['create', false]],
  );
  assert.equal(fs.existsSync(path), false);
});

test('a created file whose directory was synced survives every power crash', () => {
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
  console.log(`dir-synced create seeds: ${seeds.join(',')}`);
  for (const seed of seeds) {
    const { dir, storage } = fresh();
    const path = nodePath.join(dir, 'new');
    const handle = storage.open(path, { create: true });
    handle.write(0, bytes(10, 1));
    handle.sync();
    storage.syncDir(dir);
    assert.equal(storage.unsyncedNamespaceCount(), 0);
    storage.crashNow('power', { seed });
    assert.deepEqual(fileBytes(path), bytes(10, 1), `seed ${seed}`);
  }
});

test('a process crash keeps a created file whose directory was not synced', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'new');
  storage.open(path, { create: true }).write(0, bytes(1, 1));
  storage.crashNow('process');
  assert.equal(fs.existsSync(path), true);
});

test('an unlink not dir-synced can be undone: the file comes back with its durable content', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(4, 1));
  handle.write(0, bytes(2, 2)); // unsynced, then the file is unlinked
  handle.close();
  storage.unlink(path);
  assert.equal(fs.existsSync(path), false);
  storage.crashNow('power', { keepNamespace: none, keepWrite: none });
  assert.deepEqual([...fileBytes(path)], [1, 1, 1, 1]);
});

test('a durable unlink stays done', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  durableFile(storage, dir, 'f', bytes(4, 1)).close();
  storage.unlink(path);
  storage.syncDir(dir);
  assert.equal(storage.unsyncedNamespaceCount(), 0);
  storage.crashNow('power', { keepNamespace: none });
  assert.equal(fs.existsSync(path), false);
});

test('a rename over a file, not dir-synced, can be undone: both names get their old contents back', () => {
  const { dir, storage } = fresh();
  const tmp = nodePath.join(dir, 'tmp');
  const target = nodePath.join(dir, 'target');
  durableFile(storage, dir, 'target', bytes(3, 1)).close();
  const handle = durableFile(storage, dir, 'tmp', bytes(3, 2));
  storage.rename(tmp, target);
  handle.write(0, bytes(1, 9)); // through the old handle, now at the new name; unsynced
  assert.deepEqual([...fileBytes(target)], [9, 2, 2]);
  storage.crashNow('power', { keepNamespace: none, keepWrite: all });
  assert.deepEqual([...fileBytes(target)], [1, 1, 1], 'the replaced file is back');
  assert.deepEqual([...fileBytes(tmp)], [9, 2, 2], 'the renamed file is back at its old name with its kept write');
});

test('a rename kept by a power crash keeps the new name', () => {
  const { dir, storage } = fresh();
  const tmp = nodePath.join(dir, 'tmp');
  const target = nodePath.join(dir, 'target');
  durableFile(storage, dir, 'target', bytes(3, 1)).close();
  durableFile(storage, dir, 'tmp', bytes(3, 2)).close();
  storage.rename(tmp, target);
  storage.crashNow('power', { keepNamespace: all });
  assert.equal(fs.existsSync(tmp), false);
  assert.deepEqual([...fileBytes(target)], [2, 2, 2]);
});

test('dropping a create drops the later rename of that file too (dependency closure)', () => {
  const { dir, storage } = fresh();
  const a = nodePath.join(dir, 'a');
  const b = nodePath.join(dir, 'b');
  const handle = storage.open(a, { create: true });
  handle.write(0, bytes(2, 5));
  handle.sync();
  storage.rename(a, b);
  assert.equal(storage.unsyncedNamespaceCount(), 2);
  const report = storage.crashNow('power', { keepNamespace: (index) => index === 1 });
  assert.deepEqual(
    report.namespace.map((entry) => [entry.kind, entry.kept]),
    [
      ['create', false],
      ['rename', false],
    ],
  );
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('a dir-synced rename makes the create it depends on durable', () => {
  const { dir, storage } = fresh();
  const sub = nodePath.join(dir, 'sub');
  storage.mkdir(sub);
  storage.syncDir(dir);
  const a = nodePath.join(sub, 'a');
  const b = nodePath.join(dir, 'b');
  const handle = storage.open(a, { create: true });
  handle.write(0, bytes(2, 5));
  handle.sync();
  storage.rename(a, b); // touches sub and dir
  storage.syncDir(dir);
  assert.equal(storage.unsyncedNamespaceCount(), 2, 'sub not synced yet: the rename is not durable');
  storage.syncDir(sub);
  assert.equal(storage.unsyncedNamespaceCount(), 0, 'the rename is durable and so is the create it depends on');
  storage.crashNow('power', { keepNamespace: none });
  assert.deepEqual([...fileBytes(b)], [5, 5]);
});

test('a durable create inside a renamed directory does not make the directory rename durable: dropped, the directory goes back with the file in it', () => {
  const { dir, storage } = fresh();
  const sub = nodePath.join(dir, 'sub');
  const sub2 = nodePath.join(dir, 'sub2');
  storage.mkdir(sub);
  storage.syncDir(dir);
  storage.rename(sub, sub2); // not dir-synced: dir is never synced again
  const x = nodePath.join(sub2, 'x');
  const handle = storage.open(x, { create: true });
  handle.write(0, bytes(2, 4));
  handle.sync();
  storage.syncDir(sub2); // the create is durable in the directory, whatever its name
  assert.equal(storage.unsyncedNamespaceCount(), 1, 'the rename waits for a sync of dir');
  storage.crashNow('power', { keepNamespace: none });
  assert.equal(fs.existsSync(sub2), false);
  assert.deepEqual([...fileBytes(nodePath.join(sub, 'x'))], [4, 4]);
});

test('mkdir is durable only after a sync of its parent: dropped, the directory vanishes with everything in it, synced files included', () => {
  const { dir, storage } = fresh();
  const a = nodePath.join(dir, 'a');
  const b = nodePath.join(a, 'b');
  storage.mkdir(a);
  storage.mkdir(b);
  storage.syncDir(a); // b's entry in a is durable; a's entry in dir is not
  const handle = durableFile(storage, b, 'f', bytes(2, 3));
  handle.close();
  assert.equal(storage.unsyncedNamespaceCount(), 1);
  assert.deepEqual(
    storage.crashNow('power', { keepNamespace: none }).namespace.map((entry) => [entry.kind, entry.kept]),
    [['mkdir', false]],
  );
  assert.equal(fs.existsSync(a), false, 'syncing a and b does not make a durable in dir');

  const other = fresh();
  const c = nodePath.join(other.dir, 'c');
  other.storage.mkdir(c);
  other.storage.syncDir(other.dir);
  assert.equal(other.storage.unsyncedNamespaceCount(), 0);
  other.storage.crashNow('power', { keepNamespace: none });
  assert.equal(fs.existsSync(c), true);
});

test('a dropped mkdir drops the later creates inside it; a kept mkdir may lose them', () => {
  const { dir, storage } = fresh();
  const a = nodePath.join(dir, 'a');
  storage.mkdir(a);
  storage.open(nodePath.join(a, 'f'), { create: true }).close();
  const report = storage.crashNow('power', { keepNamespace: (index) => index === 1 });
  assert.deepEqual(
    report.namespace.map((entry) => [entry.kind, entry.kept]),
    [
      ['mkdir', false],
      ['create', false],
    ],
  );
  assert.equal(fs.existsSync(a), false);

  const other = fresh();
  const a2 = nodePath.join(other.dir, 'a');
  other.storage.mkdir(a2);
  other.storage.open(nodePath.join(a2, 'f'), { create: true }).close();
  other.storage.crashNow('power', { keepNamespace: (index) => index === 0 });
  assert.deepEqual(fs.readdirSync(a2), []);
});

test('rmdir is durable only after a sync of its parent: dropped, the empty directory comes back', () => {
  const { dir, storage } = fresh();
  const a = nodePath.join(dir, 'a');
  storage.mkdir(a);
  storage.syncDir(dir);
  const handle = durableFile(storage, a, 'f', bytes(1, 1));
  handle.close();
  storage.unlink(nodePath.join(a, 'f'));
  storage.syncDir(a);
  storage.rmdir(a);
  assert.equal(storage.unsyncedNamespaceCount(), 1);
  storage.crashNow('power', { keepNamespace: none });
  assert.deepEqual(fs.readdirSync(a), []);

  // The unlink inside was not synced, but the rmdir was: the directory is gone, the unlink moot.
  const other = fresh();
  const b = nodePath.join(other.dir, 'b');
  other.storage.mkdir(b);
  other.storage.syncDir(other.dir);
  durableFile(other.storage, b, 'f', bytes(1, 1)).close();
  other.storage.unlink(nodePath.join(b, 'f'));
  other.storage.rmdir(b);
  other.storage.syncDir(other.dir);
  assert.equal(other.storage.unsyncedNamespaceCount(), 0);
  other.storage.crashNow('power', { keepNamespace: none });
  assert.equal(fs.existsSync(b), false);
});

test('a dropped directory rename moves the files inside it back, with their data choices applied there', () => {
  const { dir, storage } = fresh();
  const sub = nodePath.join(dir, 'sub');
  const sub2 = nodePath.join(dir, 'sub2');
  storage.mkdir(sub);
  storage.syncDir(dir);
  const handle = durableFile(storage, sub, 'f', bytes(2, 1));
  storage.rename(sub, sub2);
  handle.write(0, bytes(1, 2)); // unsynced, made while the file was sub2/f
  storage.crashNow('power', { keepNamespace: none, keepWrite: none });
  assert.equal(fs.existsSync(sub2), false);
  assert.deepEqual([...fileBytes(nodePath.join(sub, 'f'))], [1, 1]);
});

test('writes through a handle of an unlinked file come back with it when the unlink is dropped', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(2, 1));
  storage.unlink(path);
  handle.write(2, bytes(2, 3)); // the open handle still writes the unlinked file
  handle.sync();
  storage.crashNow('power', { keepNamespace: none });
  assert.deepEqual([...fileBytes(path)], [1, 1, 3, 3]);
});
