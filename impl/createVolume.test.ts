// create (impl/createVolume.ts, impl/volumeNamespace.ts): it never destroys what is
// not its own, a failed create leaves the tree exactly as it was, geometry is
// judged before anything is made, and every name it makes is made durable by a
// sync of its directory (docs/format.md, "create").

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { CowmapError, type ErrorCode } from './errors.ts';
import { makeTemporaryDir, NodeStorage, removeTree } from './nodeStorage.ts';
import { ReplicatedVolume } from './replicatedVolume.ts';
import type { Storage } from './storage.ts';
import { FailingStorage, RecordingStorage } from '../harness/storage/storageDoubles.ts';

const geometry = { regions: 20, regionSize: 512 };
const nodeStorage = new NodeStorage();
let root: string;

beforeEach(() => {
  root = makeTemporaryDir('cowmap-create-');
});

afterEach(() => removeTree(root));

/** Every directory and file under `dir`, with a digest of each file's bytes. */
function treeOf(dir: string): Record<string, string> {
  const tree: Record<string, string> = {};
  const walk = (path: string): void => {
    for (const name of readdirSync(path).sort()) {
      const child = join(path, name);
      const relativePath = child.slice(root.length);
      if (statSync(child).isDirectory()) {
        tree[relativePath] = 'dir';
        walk(child);
      } else {
        tree[relativePath] = createHash('sha256').update(readFileSync(child)).digest('hex');
      }
    }
  };
  walk(dir);
  return tree;
}

function expectCode(call: () => unknown, code: ErrorCode, message?: RegExp): CowmapError {
  let caught: CowmapError | null = null;
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof CowmapError, `expected a CowmapError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (message !== undefined) assert.match(error.message, message);
    caught = error;
    return true;
  });
  return caught!;
}

function create(storage: Storage, dir: string, secondaryDir?: string, shape = geometry): void {
  ReplicatedVolume.create(storage, dir, shape, secondaryDir === undefined ? {} : { secondaryDir }).close();
}

describe('create never destroys what is not its own', () => {
  test('init B --secondary A/secondary, A a volume: E_EXISTS, nothing made, and A still opens with its data', () => {
    const volumeA = join(root, 'A');
    const data = new Uint8Array(geometry.regionSize).fill(0x5a);
    const a = ReplicatedVolume.create(nodeStorage, volumeA, geometry);
    a.writeRegion(0, data);
    a.close();
    const before = treeOf(root);
    for (const secondaryDir of [
      join(volumeA, 'secondary'),
      volumeA,
      join(volumeA, 'x'),
      join(volumeA, 'secondary', 'x'),
    ]) {
      expectCode(
        () => create(nodeStorage, join(root, 'B'), secondaryDir),
        'E_EXISTS',
        /another volume|secondary of another volume/,
      );
      assert.deepEqual(treeOf(root), before, `nothing changed by --secondary ${secondaryDir}`);
    }
    expectCode(() => create(nodeStorage, join(volumeA, 'secondary')), 'E_EXISTS', /secondary/);
    assert.deepEqual(treeOf(root), before);
    const reopened = ReplicatedVolume.open(nodeStorage, volumeA);
    assert.deepEqual(reopened.readRegion(0), data);
    reopened.close();
  });

  test("a user's file named primary in DIR is untouched: E_EXISTS naming it", () => {
    const dir = join(root, 'v');
    mkdirSync(dir);
    writeFileSync(join(dir, 'primary'), 'the user owns this');
    writeFileSync(join(dir, 'notes'), 'and this');
    const before = treeOf(root);
    expectCode(
      () => create(nodeStorage, dir),
      'E_EXISTS',
      new RegExp(`${join(dir, 'notes')}.*${join(dir, 'primary')}|not empty`),
    );
    assert.deepEqual(treeOf(root), before);
    assert.equal(readFileSync(join(dir, 'primary'), 'utf8'), 'the user owns this');
  });

  test('the leftovers of an init cut short are named, never removed', () => {
    const dir = join(root, 'v');
    mkdirSync(join(dir, 'secondary'), { recursive: true });
    for (const name of ['primary', 'map0', 'cow', 'meta.tmp']) writeFileSync(join(dir, name), name);
    const before = treeOf(root);
    const error = expectCode(() => create(nodeStorage, dir), 'E_EXISTS', /cut short/);
    assert.match(error.message, new RegExp(join(dir, 'cow')));
    assert.deepEqual(treeOf(root), before);
  });

  test('a DIR or a secondary that is a file, and a secondary holding anything: E_EXISTS, untouched', () => {
    writeFileSync(join(root, 'file'), 'x');
    mkdirSync(join(root, 'full'));
    writeFileSync(join(root, 'full', 'image'), 'not a secondary');
    const before = treeOf(root);
    expectCode(() => create(nodeStorage, join(root, 'file')), 'E_EXISTS', /not a directory/);
    expectCode(() => create(nodeStorage, join(root, 'file', 'v')), 'E_EXISTS', /not a directory/);
    expectCode(() => create(nodeStorage, join(root, 'v'), join(root, 'file')), 'E_EXISTS', /not a directory/);
    expectCode(
      () => create(nodeStorage, join(root, 'v'), join(root, 'full')),
      'E_EXISTS',
      new RegExp(`not empty.*${join(root, 'full', 'image')}`),
    );
    assert.deepEqual(treeOf(root), before);
  });

  test('a volume inside its secondary, or a secondary under a volume file name: E_BAD_REQUEST, nothing made', () => {
    expectCode(
      () => create(nodeStorage, join(root, 's', 'v'), join(root, 's')),
      'E_BAD_REQUEST',
      /inside its secondary/,
    );
    expectCode(() => create(nodeStorage, join(root, 'v'), join(root, 'v', 'primary')), 'E_BAD_REQUEST', /volume file/);
    assert.deepEqual(treeOf(root), {});
  });

  test('a secondary directory that reads as a URL (a mistyped nbd: one, another scheme): E_BAD_REQUEST, nothing made', () => {
    for (const url of ['nbd:/127.0.0.1:1/x', 'nbds://host/x', 'http://host/x']) {
      expectCode(() => create(nodeStorage, join(root, 'v'), url), 'E_BAD_REQUEST', /reads as a URL/);
    }
    assert.deepEqual(treeOf(root), {});
  });

  test('an empty DIR and an empty secondary are used, and a volume is made', () => {
    mkdirSync(join(root, 'v'));
    mkdirSync(join(root, 's'));
    create(nodeStorage, join(root, 'v'), join(root, 's'));
    ReplicatedVolume.open(nodeStorage, join(root, 'v')).close();
  });
});

describe('a failed create removes exactly what it made', () => {
  const places = [
    { name: 'DIR and two ancestors missing', dir: 'a/b/v', secondary: undefined, made: [] },
    { name: 'DIR existing and empty', dir: 'v', secondary: undefined, made: ['v'] },
    { name: 'a secondary elsewhere, in missing directories', dir: 'v', secondary: 's/t', made: [] },
  ];
  for (const place of places) {
    test(`ENOSPC on the truncate of the cow file, ${place.name}: the tree is as before`, () => {
      for (const path of place.made) mkdirSync(join(root, path));
      const before = treeOf(root);
      const storage = new FailingStorage(nodeStorage);
      storage.failWhen((call) => call.kind === 'truncate' && basename(call.path) === 'cow');
      const dir = join(root, place.dir);
      const error = expectCode(
        () => create(storage, dir, place.secondary === undefined ? undefined : join(root, place.secondary)),
        'E_IO',
      );
      assert.equal(storage.disarm(), false, 'the fault fired');
      assert.equal(error.message.split('ENOSPC').length, 2, `the errno once: ${error.message}`);
      assert.match(error.message, new RegExp(`^create\\(${dir}\\): ENOSPC: .*'${join(dir, 'cow')}'`));
      assert.deepEqual(treeOf(root), before);
    });
  }

  test('a failure at each durable call of create, in turn, leaves the tree as before; past the last one the volume is made', () => {
    mkdirSync(join(root, 'existing'));
    const before = treeOf(root);
    const dir = join(root, 'existing', 'a', 'v');
    const secondaryDir = join(root, 's', 't');
    let failures = 0;
    for (let index = 0; ; index++) {
      // The recorder outside the failing storage logs the failed call too.
      const failing = new FailingStorage(nodeStorage);
      const storage = new RecordingStorage(failing);
      failing.failAt(index, index % 2 === 0 ? 'ENOSPC' : 'EIO');
      try {
        create(storage, dir, secondaryDir);
      } catch (error) {
        assert.ok(error instanceof CowmapError && error.code === 'E_IO', `call ${index}: ${String(error)}`);
        assert.doesNotMatch(error.message, /failed too/, `call ${index}: the cleanup worked`);
        const failed = storage.durableSince()[index];
        assert.deepEqual(
          treeOf(root),
          before,
          `after a failure at durable call ${index} (${failed?.kind} ${failed?.path})`,
        );
        failures++;
        continue;
      }
      assert.equal(failing.disarm(), true, 'the create that succeeded made fewer durable calls than the index');
      break;
    }
    assert.ok(failures >= 20, `${failures} failure points`);
    ReplicatedVolume.open(nodeStorage, dir).close();
  });
});

describe('geometry and durable names', () => {
  test('init --regions 16777216 --region-size 1048576 (2^44 bytes, above 2^42): E_SIZE with nothing made', () => {
    const storage = new RecordingStorage(nodeStorage);
    expectCode(
      () => create(storage, join(root, 'big', 'v'), undefined, { regions: 16777216, regionSize: 1048576 }),
      'E_SIZE',
      /exceed/,
    );
    assert.equal(storage.durableCalls, 0);
    assert.deepEqual(treeOf(root), {});
    create(nodeStorage, join(root, 'edge'), undefined, { regions: 4096, regionSize: 1 << 26 }); // 2^38 bytes: allowed (sparse files).
  });

  test('each new directory is synced into its parent at once, each new file into its directory before the metadata rename, and DIR after it', () => {
    const storage = new RecordingStorage(nodeStorage);
    const dir = join(root, 'a', 'b', 'v');
    const secondaryDir = join(root, 's', 't');
    create(storage, dir, secondaryDir);
    const log = storage.durableSince();
    const made = log.flatMap((call, index) => (call.kind === 'mkdir' ? [{ path: call.path, index }] : []));
    assert.deepEqual(
      made.map((entry) => entry.path),
      [join(root, 'a'), join(root, 'a', 'b'), dir, join(root, 's'), secondaryDir],
      'one directory at a time, top down',
    );
    for (const { path, index } of made)
      assert.deepEqual(log[index + 1], { kind: 'syncDir', path: dirname(path) }, `${path} synced into its parent`);
    const renameIndex = log.findIndex((call) => call.kind === 'rename');
    assert.equal(log[renameIndex]!.to, join(dir, 'meta'));
    for (const [index, call] of log.entries()) {
      if (call.kind !== 'create' || basename(call.path) === 'meta.tmp') continue;
      const synced = log
        .slice(index + 1, renameIndex)
        .some((later) => later.kind === 'syncDir' && later.path === dirname(call.path));
      assert.ok(synced, `${call.path} is in a synced directory before the metadata rename`);
    }
    assert.ok(
      log.slice(renameIndex + 1).some((call) => call.kind === 'syncDir' && call.path === dir),
      'DIR synced after the rename',
    );
    assert.equal(log.filter((call) => call.kind === 'unlink' || call.kind === 'rmdir').length, 0, 'nothing removed');
  });
});
