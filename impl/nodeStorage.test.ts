// NodeStorage: file handles as impl/storage.ts describes them (one-level mkdir,
// rmdir, read-only opens, errors that name the file) and the volume lock, a
// kernel lock on DIR/lock: one exclusive holder or many shared ones, keyed by the
// file whatever the path (a symlink conflicts too), in one process as across
// processes. The race of takers after a holder's death is impl/lock.test.ts.

import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { CowmapError } from './errors.ts';
import { lockFileName, makeTemporaryDir, NodeStorage, removeTree } from './nodeStorage.ts';
import { ReplicatedVolume } from './replicatedVolume.ts';

const storage = new NodeStorage();
let root: string;

beforeEach(() => {
  root = makeTemporaryDir('cowmap-storage-');
});

afterEach(() => removeTree(root));

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown }).code;
}

describe('file handles', () => {
  test('create is exclusive; reads past the end are zeros; writes land where asked', () => {
    const path = join(root, 'f');
    const file = storage.open(path, { create: true });
    assert.throws(
      () => storage.open(path, { create: true }),
      (error: unknown) => codeOf(error) === 'EEXIST',
    );
    assert.throws(
      () => storage.open(join(root, 'missing'), { create: false }),
      (error: unknown) => codeOf(error) === 'ENOENT',
    );
    file.write(3, Uint8Array.of(1, 2));
    file.sync();
    assert.equal(file.size(), 5);
    assert.deepEqual(file.read(2, 6), Uint8Array.of(0, 1, 2, 0, 0, 0));
    file.truncate(1024);
    assert.equal(file.size(), 1024);
    file.close();
    file.close();
    storage.syncDir(root);
    assert.deepEqual(storage.list(root), ['f']);
  });

  test('a read-only open reads, and its writes fail with a code and a message naming the file once', () => {
    const path = join(root, 'f');
    const writer = storage.open(path, { create: true });
    writer.write(0, Uint8Array.of(7, 8));
    writer.close();
    const reader = storage.open(path, { create: false, readOnly: true });
    assert.deepEqual(reader.read(0, 2), Uint8Array.of(7, 8));
    for (const call of [() => reader.write(0, Uint8Array.of(1)), () => reader.truncate(0)]) {
      assert.throws(call, (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.ok(['EBADF', 'EINVAL'].includes(codeOf(error) as string), `code ${String(codeOf(error))}`);
        assert.ok(error.message.endsWith(`'${path}'`), error.message);
        assert.equal(error.message.split(String(codeOf(error))).length, 2, `the errno once: ${error.message}`);
        return true;
      });
    }
    reader.close();
  });

  test('mkdir makes one directory: ENOENT without its parent, EEXIST when present; rmdir removes an empty one', () => {
    const parent = join(root, 'a');
    const child = join(parent, 'b');
    assert.throws(
      () => storage.mkdir(child),
      (error: unknown) => codeOf(error) === 'ENOENT',
    );
    assert.ok(!storage.exists(parent), 'nothing made by a failed mkdir');
    storage.mkdir(parent);
    assert.throws(
      () => storage.mkdir(parent),
      (error: unknown) => codeOf(error) === 'EEXIST',
    );
    storage.mkdir(child);
    assert.throws(
      () => storage.rmdir(parent),
      (error: unknown) => codeOf(error) === 'ENOTEMPTY',
    );
    storage.rmdir(child);
    storage.rmdir(parent);
    assert.deepEqual(storage.list(root), []);
  });
});

describe('locks', () => {
  test('one exclusive holder per directory, also through another path or a symlink; release lets the next one in', () => {
    const dir = join(root, 'd');
    storage.mkdir(dir);
    symlinkSync(dir, join(root, 'link'));
    const lock = storage.lock(dir);
    assert.notEqual(lock, null);
    assert.equal(storage.lock(dir), null);
    assert.equal(new NodeStorage().lock(join(root, '.', 'd')), null, 'another path and another NodeStorage');
    assert.equal(storage.lock(join(root, 'link')), null, 'through a symlink');
    assert.equal(storage.lock(dir, { shared: true }), null, 'shared while an exclusive holder has it');
    lock!.release();
    lock!.release();
    assert.ok(
      storage.exists(join(dir, lockFileName)),
      'the lock file stays: removing it would let two takers lock two files',
    );
    const again = storage.lock(join(root, 'link'));
    assert.notEqual(again, null);
    again!.release();
  });

  test('shared holders coexist and keep an exclusive one out until the last releases', () => {
    const dir = join(root, 'd');
    storage.mkdir(dir);
    const first = storage.lock(dir, { shared: true });
    const second = storage.lock(dir, { shared: true });
    assert.ok(first !== null && second !== null);
    assert.equal(storage.lock(dir), null);
    first.release();
    assert.equal(storage.lock(dir), null, 'one shared holder is left');
    second.release();
    const exclusive = storage.lock(dir);
    assert.notEqual(exclusive, null);
    exclusive!.release();
  });

  test('the content of a lock file means nothing: a pid file of a live process does not block', () => {
    const dir = join(root, 'd');
    storage.mkdir(dir);
    const file = storage.open(join(dir, lockFileName), { create: true });
    file.write(0, new TextEncoder().encode(`${process.ppid}\n`));
    file.close();
    const lock = storage.lock(dir);
    assert.notEqual(lock, null);
    lock!.release();
  });

  test('a lock on a missing directory is a storage error, not a lock', () => {
    assert.throws(
      () => storage.lock(join(root, 'missing')),
      (error: unknown) => codeOf(error) === 'ENOENT',
    );
  });

  test('a second open of a volume, also through a symlink: E_LOCKED, until the first closes', () => {
    const dir = join(root, 'vol');
    symlinkSync(dir, join(root, 'link'));
    const first = ReplicatedVolume.create(storage, dir, { regions: 2, regionSize: 512 });
    for (const path of [dir, join(root, 'link')]) {
      assert.throws(
        () => ReplicatedVolume.open(storage, path),
        (error: unknown) => error instanceof CowmapError && error.code === 'E_LOCKED' && /locked/.test(error.message),
      );
    }
    first.close();
    ReplicatedVolume.open(storage, join(root, 'link')).close();
  });
});
