// open at the file level (impl/openVolume.ts): nothing is read before its name is
// durable (DIR synced first, the secondary's directory before the secondary), and a
// read-only open opens every file O_RDONLY, takes a shared lock and makes no
// durable call at all, also on a read-only file system.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { RecordingStorage } from '../harness/storage/storageDoubles.ts';
import { CowmapError } from './errors.ts';
import { geometryProblem } from './geometry.ts';
import { lockFileName, makeTemporaryDir, NodeStorage, removeTree } from './nodeStorage.ts';
import { openVolumeParts } from './openVolume.ts';
import { ReplicatedVolume } from './replicatedVolume.ts';
import type { Storage } from './storage.ts';
import { closeParts, type VolumeParts, type VolumeRules } from './volumeParts.ts';

const geometry = { regions: 20, regionSize: 512 };
const rules: VolumeRules = { geometryProblem, refusesExistingVolume: true, honoursLock: true, syncFilesAtOpen: true };
const nodeStorage = new NodeStorage();
let root: string;
let dir: string;
let secondaryDir: string;

beforeEach(() => {
  root = makeTemporaryDir('cowmap-open-');
  dir = join(root, 'v');
  secondaryDir = join(root, 's');
  ReplicatedVolume.create(nodeStorage, dir, geometry, { secondaryDir }).close();
});

afterEach(() => removeTree(root));

function open(storage: Storage, readOnly: boolean): VolumeParts {
  return openVolumeParts(storage, dir, { readOnly }, rules);
}

function expectLocked(call: () => unknown): void {
  assert.throws(call, (error: unknown) => error instanceof CowmapError && error.code === 'E_LOCKED');
}

describe('open', () => {
  test('syncs DIR before it reads anything, and the secondary directory before the secondary', () => {
    const storage = new RecordingStorage(nodeStorage);
    const parts = open(storage, false);
    closeParts(parts);
    assert.equal(parts.readOnly, false);
    assert.deepEqual(storage.log[0], { kind: 'syncDir', path: dir }, 'the first call');
    const secondarySync = storage.log.findIndex((call) => call.kind === 'syncDir' && call.path === secondaryDir);
    const firstSecondaryOpen = storage.log.findIndex(
      (call) => call.kind === 'open' && call.path.startsWith(`${secondaryDir}/`),
    );
    assert.ok(
      secondarySync >= 0 && secondarySync < firstSecondaryOpen,
      `the secondary's directory synced (${secondarySync}) before its files are opened (${firstSecondaryOpen})`,
    );
  });

  test('read-only: every file O_RDONLY, no durable call at all, parts.readOnly', () => {
    const storage = new RecordingStorage(nodeStorage);
    const parts = open(storage, true);
    closeParts(parts);
    assert.equal(parts.readOnly, true);
    assert.equal(storage.durableCalls, 0, JSON.stringify(storage.log));
    const opens = storage.log.filter((call) => call.kind === 'open');
    assert.ok(opens.length >= 7, `${opens.length} files opened`);
    for (const call of opens) assert.equal(call.readOnly, true, call.path);
  });

  test('read-only opens share the lock; a read-write open excludes them and they exclude it', () => {
    const first = open(nodeStorage, true);
    const second = open(nodeStorage, true);
    expectLocked(() => open(nodeStorage, false));
    closeParts(first);
    expectLocked(() => open(nodeStorage, false));
    closeParts(second);
    const writer = open(nodeStorage, false);
    expectLocked(() => open(nodeStorage, true));
    closeParts(writer);
  });
});

/** Mounts `path` read-only onto itself; false when this process may not mount (not root, no mount namespace). */
function remountReadOnly(path: string): boolean {
  if (process.platform !== 'linux') return false;
  if (spawnSync('mount', ['--bind', path, path]).status !== 0) return false;
  if (spawnSync('mount', ['-o', 'remount,ro,bind', path]).status !== 0) {
    spawnSync('umount', [path]);
    return false;
  }
  return true;
}

describe('read-only file system', () => {
  for (const lockFile of ['present', 'absent'] as const) {
    test(`a read-only open works with the lock file ${lockFile}, and a read-write one is E_IO naming EROFS`, (context) => {
      if (lockFile === 'absent') unlinkSync(join(dir, lockFileName));
      if (!remountReadOnly(root)) {
        context.skip('cannot mount a read-only file system here');
        return;
      }
      try {
        const storage = new RecordingStorage(nodeStorage);
        const parts = open(storage, true);
        // With the file there, the lock is taken on an O_RDONLY descriptor: a second process
        // could not take it exclusively; without it, there is nothing to lock on a file system nobody can write.
        closeParts(parts);
        assert.equal(storage.durableCalls, 0);
        assert.throws(
          () => open(nodeStorage, false),
          (error: unknown) =>
            error instanceof CowmapError &&
            error.code === 'E_IO' &&
            /EROFS/.test(error.message) &&
            error.message.split('EROFS').length === 2,
        );
      } finally {
        spawnSync('umount', [root]);
      }
    });
  }
});
