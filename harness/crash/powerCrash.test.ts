// Tests of a power crash of the crash layer (harness/crash/powerCrash.ts): unsynced
// writes and truncates kept or dropped, whole or per sector, the seeded coins and
// the explicit choices. Randomised tests print their seeds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { sectorSize } from '../../impl/geometry.ts';
import type { CrashStorage } from './crashStorage.ts';
import { all, bytes, durableFile, fileBytes, fresh, none } from './crashTestFiles.ts';

// ----- power mode: writes ------------------------------------------------------

/** Two files with synced content, then unsynced writes over them; returns the paths. */
function powerScenario(storage: CrashStorage, dir: string): { a: string; b: string } {
  const a = nodePath.join(dir, 'a');
  const b = nodePath.join(dir, 'b');
  const handleA = durableFile(storage, dir, 'a', bytes(2 * sectorSize, 1));
  const handleB = durableFile(storage, dir, 'b', bytes(sectorSize, 2));
  handleA.write(0, bytes(sectorSize, 3));
  handleA.sync(); // durable: a = a sector of 3s, a sector of 1s
  handleA.write(sectorSize, bytes(sectorSize, 4));
  handleB.write(0, bytes(100, 5));
  handleA.write(2 * sectorSize, bytes(10, 6)); // growth
  handleB.write(sectorSize / 2, bytes(sectorSize, 7)); // growth, overlaps sectors
  return { a, b };
}

test('power mode keep-none restores the last synced content of every file', () => {
  const { dir, storage } = fresh();
  const { a, b } = powerScenario(storage, dir);
  assert.equal(storage.unsyncedWriteCount(), 4);
  storage.crashNow('power', { keepWrite: none });
  assert.deepEqual(fileBytes(a), Uint8Array.from([...bytes(sectorSize, 3), ...bytes(sectorSize, 1)]));
  assert.deepEqual(fileBytes(b), bytes(sectorSize, 2));
});

test('power mode keep-all keeps everything', () => {
  const { dir, storage } = fresh();
  const { a, b } = powerScenario(storage, dir);
  const beforeA = fileBytes(a);
  const beforeB = fileBytes(b);
  assert.equal(beforeA.length, 2 * sectorSize + 10);
  storage.crashNow('power', { keepWrite: all, keepTruncate: all, keepNamespace: all });
  assert.deepEqual(fileBytes(a), beforeA);
  assert.deepEqual(fileBytes(b), beforeB);
});

test('synced writes always survive a power crash, whatever the seed', () => {
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  console.log(`synced-writes seeds: ${seeds.join(',')}`);
  for (const seed of seeds) {
    for (const torn of [false, true]) {
      const { dir, storage } = fresh();
      const path = nodePath.join(dir, 'f');
      const handle = durableFile(storage, dir, 'f', bytes(2048, 1));
      handle.write(0, bytes(600, 2));
      handle.write(1500, bytes(1000, 3));
      handle.sync(); // everything so far durable
      handle.write(100, bytes(1000, 4));
      handle.truncate(3000);
      const report = storage.crashNow('power', { seed, torn });
      const content = fileBytes(path);
      // Bytes outside the unsynced write's range are durable whatever happened.
      assert.deepEqual(content.subarray(0, 100), bytes(100, 2), `seed ${seed} torn ${torn}`);
      assert.deepEqual(content.subarray(1100, 1500), bytes(400, 1), `seed ${seed} torn ${torn}`);
      assert.deepEqual(content.subarray(1500, 2500), bytes(1000, 3), `seed ${seed} torn ${torn}`);
      assert.equal(content.length, report.truncates[0]!.kept ? 3000 : 2500, `seed ${seed} torn ${torn}`);
      // Inside it: the old durable bytes or the new ones.
      for (let i = 100; i < 1100; i++) {
        const old = i < 600 ? 2 : 1;
        assert.ok(content[i] === old || content[i] === 4, `seed ${seed} torn ${torn} byte ${i} = ${content[i]}`);
      }
    }
  }
});

test('overlapping unsynced writes: older kept and newer dropped leaves the older', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(8, 1));
  handle.write(0, bytes(6, 2)); // index 0
  handle.write(2, bytes(6, 3)); // index 1
  storage.crashNow('power', { keepWrite: (index) => index === 0 });
  assert.deepEqual([...fileBytes(path)], [2, 2, 2, 2, 2, 2, 1, 1]);
});

test('overlapping unsynced writes: older dropped and newer kept leaves the newer over the durable bytes', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(8, 1));
  handle.write(0, bytes(6, 2));
  handle.write(2, bytes(4, 3));
  storage.crashNow('power', { keepWrite: (index) => index === 1 });
  assert.deepEqual([...fileBytes(path)], [1, 1, 3, 3, 3, 3, 1, 1]);
});

test('file growth by an unsynced write is undone when it is dropped', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(100, 1));
  handle.write(90, bytes(20, 2)); // grows to 110
  handle.write(1000, bytes(10, 3)); // grows to 1010
  assert.equal(fileBytes(path).length, 1010);
  storage.crashNow('power', { keepWrite: none });
  assert.deepEqual(fileBytes(path), bytes(100, 1));
});

test('a kept write after a dropped growing write leaves a hole of zeros', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(4, 1));
  handle.write(4, bytes(4, 2)); // dropped
  handle.write(8, bytes(2, 3)); // kept
  storage.crashNow('power', { keepWrite: (index) => index === 1 });
  assert.deepEqual([...fileBytes(path)], [1, 1, 1, 1, 0, 0, 0, 0, 3, 3]);
});

test('unsynced truncates are kept or dropped; a dropped shrink brings back the cut bytes', () => {
  for (const kept of [false, true]) {
    const { dir, storage } = fresh();
    const path = nodePath.join(dir, 'f');
    const handle = durableFile(storage, dir, 'f', Uint8Array.from([1, 2, 3, 4, 5, 6]));
    handle.truncate(2);
    handle.write(2, bytes(1, 9)); // kept always
    assert.equal(storage.unsyncedTruncateCount(), 1);
    storage.crashNow('power', { keepWrite: all, keepTruncate: () => kept });
    assert.deepEqual([...fileBytes(path)], kept ? [1, 2, 9] : [1, 2, 9, 4, 5, 6], `kept ${kept}`);
  }
});

test('a growing truncate that is dropped gives back the old length', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(3, 1));
  handle.truncate(4096);
  storage.crashNow('power', { keepTruncate: none });
  assert.deepEqual(fileBytes(path), bytes(3, 1));
});

// ----- power mode: torn ----------------------------------------------------------

test('torn mode: explicit sector choices give exactly that sector-wise mix', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const half = sectorSize / 2;
  const handle = durableFile(storage, dir, 'f', bytes(4 * sectorSize, 1));
  handle.write(half, bytes(3 * sectorSize, 2)); // covers sectors 0 (part), 1, 2, 3 (part)
  const [info] = storage.unsyncedWrites();
  assert.equal(info!.sectorCount, 4);
  const keepSectors = [true, false, true, false];
  const report = storage.crashNow('power', { torn: true, keepSector: (_, sector) => keepSectors[sector]! });
  assert.deepEqual(report.writes[0]!.sectorsKept, keepSectors);
  const expected = new Uint8Array(4 * sectorSize).fill(1);
  expected.fill(2, half, sectorSize); // sector 0, the part written
  expected.fill(2, 2 * sectorSize, 3 * sectorSize); // sector 2
  assert.deepEqual(fileBytes(path), expected);
});

test('torn mode: tearSector tears inside a sector, byte by byte; other sectors follow keepSector', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const half = sectorSize / 2;
  const handle = durableFile(storage, dir, 'f', bytes(3 * sectorSize, 1));
  handle.write(half, bytes(2 * sectorSize, 2)); // covers half of sector 0, all of sector 1, half of sector 2
  const report = storage.crashNow('power', {
    torn: true,
    keepSector: (_, sector) => sector === 2,
    tearSector: (_, sector, covered) =>
      sector === 0 ? (byte) => byte < covered / 2 : sector === 1 ? (byte) => byte % 2 === 1 : null,
  });
  assert.deepEqual(report.writes[0]!.sectorsTorn, [0, 1]);
  assert.deepEqual(report.writes[0]!.sectorsKept, [false, false, true]);
  const expected = bytes(3 * sectorSize, 1);
  expected.fill(2, half, half + half / 2); // the first half of the covered part of sector 0
  for (let at = sectorSize + 1; at < 2 * sectorSize; at += 2) expected[at] = 2; // odd bytes of sector 1
  expected.fill(2, 2 * sectorSize, 2 * sectorSize + half); // sector 2 kept
  assert.deepEqual(fileBytes(path), expected);
});

test('torn mode with seeds gives only sector-wise mixes, and some real mixes', () => {
  const seeds = Array.from({ length: 16 }, (_, i) => 1000 + i);
  console.log(`torn seeds: ${seeds.join(',')}`);
  const sectorCount = 6;
  let mixCount = 0;
  for (const seed of seeds) {
    const { dir, storage } = fresh();
    const path = nodePath.join(dir, 'f');
    const handle = durableFile(storage, dir, 'f', bytes(sectorSize * sectorCount, 1));
    handle.write(0, bytes(sectorSize * sectorCount, 2));
    storage.crashNow('power', { seed, torn: true });
    const content = fileBytes(path);
    assert.equal(content.length, sectorSize * sectorCount, `seed ${seed}`);
    const sectorValues: number[] = [];
    for (let sector = 0; sector < sectorCount; sector++) {
      const slice = content.subarray(sector * sectorSize, (sector + 1) * sectorSize);
      const value = slice[0]!;
      assert.ok(value === 1 || value === 2, `seed ${seed} sector ${sector}`);
      assert.ok(
        slice.every((byte) => byte === value),
        `seed ${seed}: sector ${sector} is torn inside`,
      );
      sectorValues.push(value);
    }
    if (new Set(sectorValues).size === 2) mixCount++;
  }
  // Each seed mixes with probability 1 - 2/64; 16 seeds without a mix would be a broken generator.
  assert.ok(mixCount > 0, 'no seed produced a mix of old and new sectors');
});

test('without torn, a multi-sector write is kept or dropped whole', () => {
  const seeds = Array.from({ length: 16 }, (_, i) => 2000 + i);
  console.log(`whole-write seeds: ${seeds.join(',')}`);
  const outcomes = new Set<number>();
  for (const seed of seeds) {
    const { dir, storage } = fresh();
    const path = nodePath.join(dir, 'f');
    const handle = durableFile(storage, dir, 'f', bytes(4 * sectorSize, 1));
    handle.write(0, bytes(4 * sectorSize, 2));
    storage.crashNow('power', { seed });
    const content = fileBytes(path);
    const value = content[0]!;
    assert.ok(
      content.every((byte) => byte === value),
      `seed ${seed}: a write was kept in part`,
    );
    outcomes.add(value);
  }
  assert.deepEqual([...outcomes].sort(), [1, 2], 'both outcomes appear over 16 seeds');
});

// ----- determinism and exhaustive choice ------------------------------------------

function runSeeded(seed: number, torn: boolean): { a: Uint8Array; b: Uint8Array; names: string[]; outcome: string } {
  const { dir, storage } = fresh();
  const { a, b } = powerScenario(storage, dir);
  const c = storage.open(nodePath.join(dir, 'c'), { create: true });
  c.write(0, bytes(700, 8));
  c.sync();
  storage.rename(nodePath.join(dir, 'c'), nodePath.join(dir, 'd'));
  const report = storage.crashNow('power', { seed, torn });
  // The report names paths in this run's temporary directory; compare without it.
  const outcome = JSON.stringify(report).split(dir).join('<dir>');
  return { a: fileBytes(a), b: fileBytes(b), names: fs.readdirSync(dir).sort(), outcome };
}

test('the same seed and the same calls give the same files', () => {
  const seeds = [7, 8, 9, 123456789];
  console.log(`determinism seeds: ${seeds.join(',')}`);
  const distinct = new Set<string>();
  for (const seed of seeds) {
    for (const torn of [false, true]) {
      const first = runSeeded(seed, torn);
      const second = runSeeded(seed, torn);
      assert.deepEqual(first.a, second.a, `seed ${seed} torn ${torn}`);
      assert.deepEqual(first.b, second.b, `seed ${seed} torn ${torn}`);
      assert.deepEqual(first.names, second.names, `seed ${seed} torn ${torn}`);
      assert.equal(first.outcome, second.outcome, `seed ${seed} torn ${torn}`);
      distinct.add(first.outcome);
    }
  }
  assert.ok(distinct.size > 1, 'different seeds should not all give the same outcome');
});

test('explicit keep choices enumerate every subset of unsynced writes', () => {
  const writeCount = 3;
  const seen = new Set<string>();
  for (let mask = 0; mask < 1 << writeCount; mask++) {
    const { dir, storage } = fresh();
    const path = nodePath.join(dir, 'f');
    const handle = durableFile(storage, dir, 'f', bytes(3, 0));
    for (let i = 0; i < writeCount; i++) handle.write(i, bytes(1, i + 1));
    assert.equal(storage.unsyncedWriteCount(), writeCount);
    storage.crashNow('power', { keepWrite: (index) => ((mask >> index) & 1) === 1 });
    const content = [...fileBytes(path)];
    const expected = [0, 1, 2].map((i) => (((mask >> i) & 1) === 1 ? i + 1 : 0));
    assert.deepEqual(content, expected, `mask ${mask}`);
    seen.add(content.join(','));
  }
  assert.equal(seen.size, 1 << writeCount);
});

test("a sync makes a file's writes leave the unsynced count; other files keep theirs", () => {
  const { dir, storage } = fresh();
  const f = durableFile(storage, dir, 'f', bytes(1, 0));
  const g = durableFile(storage, dir, 'g', bytes(1, 0));
  f.write(0, bytes(1, 1));
  g.write(0, bytes(1, 1));
  f.write(0, bytes(1, 2));
  assert.equal(storage.unsyncedWriteCount(), 3);
  f.sync();
  assert.equal(storage.unsyncedWriteCount(), 1);
  assert.deepEqual(
    storage.unsyncedWrites().map((info) => info.path),
    [nodePath.join(dir, 'g')],
  );
  // A second handle of the same file syncs the first handle's writes too.
  g.write(0, bytes(1, 3));
  const g2 = storage.open(nodePath.join(dir, 'g'), { create: false });
  g2.sync();
  assert.equal(storage.unsyncedWriteCount(), 0);
});
