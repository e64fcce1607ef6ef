// NodeStorage: file handles as impl/storage.ts describes them, and the volume lock
// (a second open in this process or by a live process is refused; a lock left by
// a dead process, or by this one without a release, is taken over).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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

function writeText(path: string, text: string): void {
  const file = storage.open(path, { create: !storage.exists(path) });
  try {
    file.truncate(0);
    file.write(0, new TextEncoder().encode(text));
  } finally {
    file.close();
  }
}

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(child.stdout);
  assert.ok(Number.isSafeInteger(pid) && pid > 0, `child pid '${child.stdout}'`);
  return pid;
}

describe('file handles', () => {
  test('create is exclusive; reads past the end are zeros; writes land where asked', () => {
    const path = join(root, 'f');
    const file = storage.open(path, { create: true });
    assert.throws(() => storage.open(path, { create: true }), (error: unknown) => (error as { code?: string }).code === 'EEXIST');
    assert.throws(() => storage.open(join(root, 'missing'), { create: false }), (error: unknown) => (error as { code?: string }).code === 'ENOENT');
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
});

describe('locks', () => {
  test('one holder per directory in this process; release lets the next one in', () => {
    const dir = join(root, 'd');
    storage.mkdir(dir);
    const lock = storage.lock(dir);
    assert.notEqual(lock, null);
    assert.equal(storage.lock(dir), null);
    assert.equal(new NodeStorage().lock(join(root, '.', 'd')), null, 'the same directory by another path and another NodeStorage');
    lock!.release();
    lock!.release();
    assert.ok(!storage.exists(join(dir, lockFileName)));
    const again = storage.lock(dir);
    assert.notEqual(again, null);
    again!.release();
  });

  test('a second open of a volume: E_LOCKED, until the first closes', () => {
    const dir = join(root, 'vol');
    const first = ReplicatedVolume.create(storage, dir, { regions: 2, regionSize: 512 });
    assert.throws(
      () => ReplicatedVolume.open(storage, dir),
      (error: unknown) => error instanceof CowmapError && error.code === 'E_LOCKED' && /locked/.test(error.message),
    );
    first.close();
    ReplicatedVolume.open(storage, dir).close();
  });

  test('a lock file of a live process blocks', () => {
    const dir = join(root, 'd');
    storage.mkdir(dir);
    writeText(join(dir, lockFileName), `${process.ppid}\n`);
    assert.equal(storage.lock(dir), null);
    assert.ok(storage.exists(join(dir, lockFileName)), 'a live lock is left alone');
  });

  test('a lock file of a dead process is taken over', () => {
    const dir = join(root, 'vol');
    ReplicatedVolume.create(storage, dir, { regions: 2, regionSize: 512 }).close();
    const pid = deadPid();
    writeText(join(dir, lockFileName), `${pid}\n`);
    const volume = ReplicatedVolume.open(storage, dir);
    const lockFile = storage.open(join(dir, lockFileName), { create: false });
    const text = new TextDecoder().decode(lockFile.read(0, 32));
    lockFile.close();
    assert.equal(Number.parseInt(text, 10), process.pid);
    volume.close();
    assert.ok(!storage.exists(join(dir, lockFileName)));
  });

  test('a lock file of this process that it does not hold, or an unreadable one, is stale', () => {
    const dir = join(root, 'd');
    storage.mkdir(dir);
    for (const text of [`${process.pid}\n`, 'garbage', '']) {
      writeText(join(dir, lockFileName), text);
      const lock = storage.lock(dir);
      assert.notEqual(lock, null, `lock file '${text}'`);
      lock!.release();
    }
  });
});
