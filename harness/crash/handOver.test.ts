// Tests of what a recovery inherits from a killed process (harness/crash/handOver.ts):
// the unsynced writes, truncates and namespace changes handed over, older than the
// recovery storage's own, and lost by its power crash unless it synced them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { sectorSize } from '../../impl/geometry.ts';
import { normalizePath } from './crashPaths.ts';
import { SimulatedCrash } from './crashReport.ts';
import { CrashStorage } from './crashStorage.ts';
import { all, bytes, durableFile, FsStorage, fileBytes, fresh, killAndRecover, none } from './crashTestFiles.ts';

// ----- recovery after a kill: the hand-over of unsynced data ------------------------

test('a write unsynced at a kill survives it, then a power crash of the recovery storage loses it unless that storage synced its file', () => {
  for (const syncedSince of [false, true]) {
    const { dir, storage } = fresh();
    const path = nodePath.join(dir, 'f');
    const otherPath = nodePath.join(dir, 'g');
    const handle = durableFile(storage, dir, 'f', bytes(4, 1));
    durableFile(storage, dir, 'g', bytes(2, 5)).close();
    handle.write(0, bytes(2, 2));
    storage.armCrash({ afterIo: 0, mode: 'process' });
    assert.throws(() => handle.sync(), SimulatedCrash, 'the kill comes before the sync');
    assert.deepEqual([...fileBytes(path)], [2, 2, 1, 1], 'a kill loses nothing that reached the OS');

    const recovered = new CrashStorage(new FsStorage());
    assert.deepEqual(storage.handOverTo(recovered), { writeCount: 1, truncateCount: 0, namespaceCount: 0 });
    assert.equal(storage.unsyncedWriteCount(), 0, 'the dead storage holds nothing after the hand-over');
    assert.deepEqual(
      recovered.unsyncedWrites().map((info) => [info.index, info.path, info.position, info.length, info.carried]),
      [[0, normalizePath(path), 0, 2, true]],
    );
    const reopened = recovered.open(path, { create: false });
    assert.deepEqual([...reopened.read(0, 4)], [2, 2, 1, 1], 'recovery reads the page cache');
    // A sync of another file makes nothing of f durable.
    const other = recovered.open(otherPath, { create: false });
    other.write(0, bytes(1, 6));
    other.sync();
    if (syncedSince) reopened.sync();
    assert.equal(recovered.unsyncedWriteCount(), syncedSince ? 0 : 1);

    const report = recovered.crashNow('power', { keepWrite: none, keepTruncate: none, keepNamespace: none });
    assert.deepEqual([...fileBytes(path)], syncedSince ? [2, 2, 1, 1] : [1, 1, 1, 1], `synced since: ${syncedSince}`);
    assert.deepEqual([...fileBytes(otherPath)], [6, 5], "the recovery storage's own synced write stays");
    assert.deepEqual(
      report.writes.map((write) => [write.kept, write.carried]),
      syncedSince ? [] : [[false, true]],
    );
  }
});

test("carried writes and truncates are older than the recovery storage's own: first in the choice order, across two kills", () => {
  for (const keptIndex of [0, 1]) {
    const { dir, storage } = fresh();
    const path = nodePath.join(dir, 'f');
    const handle = durableFile(storage, dir, 'f', bytes(4, 1));
    handle.write(0, bytes(1, 2));
    handle.truncate(3);
    const first = killAndRecover(storage);
    assert.equal(first.unsyncedTruncateCount(), 1);
    const own = first.open(path, { create: false });
    own.write(1, bytes(1, 3));
    // A second kill hands over both: the first kill's records, then this process's.
    const second = killAndRecover(first);
    assert.deepEqual(
      second.unsyncedWrites().map((info) => [info.position, info.carried]),
      [
        [0, true],
        [1, true],
      ],
    );
    assert.deepEqual([...fileBytes(path)], [2, 3, 1]);
    const mine = second.open(path, { create: false });
    mine.write(2, bytes(1, 4));
    assert.deepEqual(
      second.unsyncedWrites().map((info) => [info.index, info.position, info.carried]),
      [
        [0, 0, true],
        [1, 1, true],
        [2, 2, false],
      ],
    );
    const report = second.crashNow('power', { keepWrite: (index) => index === keptIndex, keepTruncate: none });
    assert.deepEqual(
      report.truncates.map((truncate) => [truncate.kept, truncate.carried]),
      [[false, true]],
    );
    // The truncate is dropped: the durable length 4 stays.
    assert.deepEqual([...fileBytes(path)], keptIndex === 0 ? [2, 1, 1, 1] : [1, 3, 1, 1], `kept write ${keptIndex}`);
  }
});

test('a carried write to a file the recovery renames or unlinks without a directory sync: the power crash undoes both', () => {
  for (const change of ['rename', 'unlink'] as const) {
    const { dir, storage } = fresh();
    const path = nodePath.join(dir, 'f');
    const moved = nodePath.join(dir, 'g');
    const handle = durableFile(storage, dir, 'f', bytes(4, 1));
    handle.write(0, bytes(2, 2));
    const recovered = killAndRecover(storage);
    assert.deepEqual([...fileBytes(path)], [2, 2, 1, 1], `${change}: the kill keeps the write`);
    if (change === 'rename') recovered.rename(path, moved);
    else recovered.unlink(path);
    recovered.crashNow('power', { keepWrite: none, keepTruncate: none, keepNamespace: none });
    // The name comes back, with its durable bytes: the carried write is dropped.
    assert.deepEqual([...fileBytes(path)], [1, 1, 1, 1], `${change}: f holds its durable bytes`);
    assert.equal(fs.existsSync(moved), false, `${change}: no g`);
  }
});

test('the same seed gives the same files after a kill, a hand-over and a torn power crash', () => {
  const outcome = (seed: number): number[] => {
    const { dir, storage } = fresh();
    const path = nodePath.join(dir, 'f');
    const handle = durableFile(storage, dir, 'f', bytes(4 * sectorSize, 1));
    handle.write(0, bytes(2 * sectorSize, 2));
    const recovered = killAndRecover(storage);
    recovered.open(path, { create: false }).write(2 * sectorSize, bytes(2 * sectorSize, 3));
    recovered.crashNow('power', { seed, torn: true });
    return [...fileBytes(path)];
  };
  const seeds = [1, 7, 42];
  const firsts = seeds.map(outcome);
  seeds.forEach((seed, index) => {
    assert.deepEqual(outcome(seed), firsts[index], `seed ${seed}`);
  });
  // Not every seed draws the same sectors (the coins are real).
  assert.ok(new Set(firsts.map((bytesOf) => bytesOf.join(','))).size > 1, 'three seeds drew the same files');
});

test('carried writes tear per sector in a torn power crash of the recovery storage', () => {
  const durableByte = 1;
  const newByte = 2;
  const layout = (sectorsKept: readonly boolean[]): Uint8Array => {
    // The write covers the second half of sector 0 of a durable 4-sector file,
    // sectors 1 and 2, and the first half of sector 3.
    const out = bytes(4 * sectorSize, durableByte);
    sectorsKept.forEach((kept, sector) => {
      if (!kept) return;
      const start = Math.max(sectorSize / 2, sector * sectorSize);
      const stop = Math.min(3.5 * sectorSize, (sector + 1) * sectorSize);
      out.fill(newByte, start, stop);
    });
    return out;
  };
  const killed = (): { path: string; recovered: CrashStorage } => {
    const { dir, storage } = fresh();
    const handle = durableFile(storage, dir, 'f', bytes(4 * sectorSize, durableByte));
    handle.write(sectorSize / 2, bytes(3 * sectorSize, newByte));
    return { path: nodePath.join(dir, 'f'), recovered: killAndRecover(storage) };
  };

  const explicitKeep = [true, false, true, false];
  const { path, recovered } = killed();
  const [info] = recovered.unsyncedWrites();
  assert.equal(info?.sectorCount, 4);
  assert.equal(info?.carried, true);
  const report = recovered.crashNow('power', { torn: true, keepSector: (_write, sector) => explicitKeep[sector]! });
  assert.deepEqual(report.writes[0]!.sectorsKept, explicitKeep);
  assert.deepEqual(fileBytes(path), layout(explicitKeep));

  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
  console.log(`carried torn seeds: ${seeds.join(',')}`);
  const mixes = new Set<string>();
  for (const seed of seeds) {
    const run = killed();
    const seeded = run.recovered.crashNow('power', { torn: true, seed });
    const sectorsKept = seeded.writes[0]!.sectorsKept!;
    assert.deepEqual(fileBytes(run.path), layout(sectorsKept), `seed ${seed}: exactly the kept sectors, each whole`);
    mixes.add(sectorsKept.map((kept) => (kept ? 'K' : '-')).join(''));
  }
  assert.ok(
    [...mixes].some((mix) => mix.includes('K') && mix.includes('-')),
    `some seed tears the write: ${[...mixes].join(' ')}`,
  );
});

test('a power crash hands over nothing; a hand-over needs a dead storage, a fresh receiver, and happens once', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(2, 1));
  handle.write(0, bytes(1, 2));
  assert.throws(() => storage.handOverTo(new CrashStorage(new FsStorage())), /only a crashed storage hands over/);
  storage.crashNow('power', { keepWrite: all });
  const recovered = new CrashStorage(new FsStorage());
  assert.deepEqual(storage.handOverTo(recovered), { writeCount: 0, truncateCount: 0, namespaceCount: 0 });
  assert.equal(recovered.unsyncedWriteCount(), 0);
  recovered.crashNow('power', { keepWrite: none });
  assert.deepEqual([...fileBytes(path)], [2, 1], 'what the power crash kept counts as durable');
  assert.throws(() => storage.handOverTo(new CrashStorage(new FsStorage())), /handed over already/);

  const other = fresh();
  durableFile(other.storage, other.dir, 'f', bytes(1, 1)).write(0, bytes(1, 2));
  other.storage.crashNow('process');
  const used = new CrashStorage(new FsStorage());
  used.syncDir(other.dir);
  assert.throws(() => other.storage.handOverTo(used), /must be fresh/);
  assert.throws(() => other.storage.handOverTo(other.storage), /must be fresh/);
});

test("namespace changes not durable at the kill stay not durable after the hand-over: a later power crash may undo them; the receiver's bounds apply", () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'created');
  const sub = nodePath.join(dir, 'sub');
  storage.mkdir(sub);
  const handle = storage.open(path, { create: true }); // the directory is never synced
  handle.write(0, bytes(3, 7));
  storage.crashNow('process');
  const recovered = new CrashStorage(new FsStorage());
  assert.deepEqual(storage.handOverTo(recovered), { writeCount: 1, truncateCount: 0, namespaceCount: 2 });
  assert.equal(recovered.unsyncedNamespaceCount(), 2);
  assert.equal(fs.existsSync(path), true, 'the kill keeps the create');
  const report = recovered.crashNow('power', { keepWrite: none, keepNamespace: none });
  assert.deepEqual(
    report.namespace.map((entry) => [entry.kind, entry.kept, entry.carried]),
    [
      ['mkdir', false, true],
      ['create', false, true],
    ],
  );
  assert.equal(fs.existsSync(path), false, 'a power loss after the recovery undoes the create the kill kept');
  assert.equal(fs.existsSync(sub), false, 'and the mkdir');

  // A sync of the directory by the recovery makes them durable.
  const synced = fresh();
  const syncedPath = nodePath.join(synced.dir, 'created');
  synced.storage.open(syncedPath, { create: true }).close();
  synced.storage.crashNow('process');
  const syncer = new CrashStorage(new FsStorage());
  synced.storage.handOverTo(syncer);
  syncer.syncDir(synced.dir);
  assert.equal(syncer.unsyncedNamespaceCount(), 0);
  syncer.crashNow('power', { keepNamespace: none });
  assert.equal(fs.existsSync(syncedPath), true);

  // An unlink carried over: the file comes back with its durable content, across two kills.
  const unlinked = fresh();
  const unlinkedPath = nodePath.join(unlinked.dir, 'f');
  durableFile(unlinked.storage, unlinked.dir, 'f', bytes(2, 9)).close();
  unlinked.storage.unlink(unlinkedPath);
  const second = killAndRecover(killAndRecover(unlinked.storage));
  assert.equal(second.unsyncedNamespaceCount(), 1);
  second.crashNow('power', { keepNamespace: none });
  assert.deepEqual([...fileBytes(unlinkedPath)], [9, 9]);

  const big = fresh();
  durableFile(big.storage, big.dir, 'f', bytes(1, 0)).write(0, bytes(600, 1));
  big.storage.crashNow('process');
  assert.throws(
    () => big.storage.handOverTo(new CrashStorage(new FsStorage(), { unsyncedBytesMax: 500 })),
    /unsyncedBytesMax/,
  );
});
