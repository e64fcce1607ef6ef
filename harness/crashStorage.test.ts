// Tests of the crash-simulating storage. They run it over a minimal node:fs
// Storage written here (so that they do not depend on impl/nodeStorage.ts), each
// test in its own temporary directory. Randomised tests print their seeds.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import type { FileHandle, Lock, OpenFileOptions, Storage } from '../impl/storage.ts';
import { CrashStorage, SimulatedCrash, normalizePath, parentDir } from './crashStorage.ts';
import { Prng } from './prng.ts';

// ----- a minimal node:fs Storage ---------------------------------------------

const heldLockDirs = new Set<string>();

class FsHandle implements FileHandle {
  constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}
  read(position: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    // Bounded: each round reads at least one byte or stops at the end of the file.
    while (done < length) {
      const got = fs.readSync(this.fd, out, done, length - done, position + done);
      if (got === 0) break;
      done += got;
    }
    return out;
  }
  write(position: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) done += fs.writeSync(this.fd, data, done, data.length - done, position + done);
  }
  sync(): void {
    fs.fdatasyncSync(this.fd);
  }
  truncate(length: number): void {
    fs.ftruncateSync(this.fd, length);
  }
  size(): number {
    return fs.fstatSync(this.fd).size;
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

class FsStorage implements Storage {
  open(path: string, options: OpenFileOptions): FileHandle {
    return new FsHandle(path, fs.openSync(path, options.create ? 'wx+' : options.readOnly === true ? 'r' : 'r+'));
  }
  exists(path: string): boolean {
    return fs.existsSync(path);
  }
  mkdir(path: string): void {
    fs.mkdirSync(path);
  }
  rmdir(path: string): void {
    fs.rmdirSync(path);
  }
  syncDir(path: string): void {
    const fd = fs.openSync(path, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  rename(from: string, to: string): void {
    fs.renameSync(from, to);
  }
  unlink(path: string): void {
    fs.unlinkSync(path);
  }
  list(path: string): string[] {
    return fs.readdirSync(path).sort();
  }
  lock(dir: string): Lock | null {
    const key = nodePath.resolve(dir);
    if (heldLockDirs.has(key)) return null;
    heldLockDirs.add(key);
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        heldLockDirs.delete(key);
      },
    };
  }
}

// ----- helpers ---------------------------------------------------------------

const tempDirs: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'cowmap-crash-'));
  tempDirs.push(dir);
  return dir;
}

after(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function fresh(): { dir: string; storage: CrashStorage } {
  return { dir: tempDir(), storage: new CrashStorage(new FsStorage()) };
}

function bytes(length: number, value: number): Uint8Array {
  return new Uint8Array(length).fill(value);
}

function fileBytes(path: string): Uint8Array {
  return new Uint8Array(fs.readFileSync(path));
}

/** Makes `name` in `dir` with `content`, synced and dir-synced: all of it durable. */
function durableFile(storage: CrashStorage, dir: string, name: string, content: Uint8Array): FileHandle {
  const handle = storage.open(nodePath.join(dir, name), { create: true });
  if (content.length > 0) handle.write(0, content);
  handle.sync();
  storage.syncDir(dir);
  return handle;
}

const none = (): boolean => false;
const all = (): boolean => true;

// ----- paths -----------------------------------------------------------------

test('paths are normalized lexically', () => {
  assert.equal(normalizePath('/a//b/./c/../d'), '/a/b/d');
  assert.equal(normalizePath('a/../..'), '..');
  assert.equal(normalizePath('./'), '.');
  assert.equal(parentDir('/a/b'), '/a');
  assert.equal(parentDir('/a'), '/');
  assert.equal(parentDir('a'), '.');
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

// ----- power mode: writes ------------------------------------------------------

/** Two files with synced content, then unsynced writes over them; returns the paths. */
function powerScenario(storage: CrashStorage, dir: string): { a: string; b: string } {
  const a = nodePath.join(dir, 'a');
  const b = nodePath.join(dir, 'b');
  const handleA = durableFile(storage, dir, 'a', bytes(1024, 1));
  const handleB = durableFile(storage, dir, 'b', bytes(512, 2));
  handleA.write(0, bytes(512, 3));
  handleA.sync(); // durable: a = 3*512 1*512
  handleA.write(512, bytes(512, 4));
  handleB.write(0, bytes(100, 5));
  handleA.write(1024, bytes(10, 6)); // growth
  handleB.write(256, bytes(512, 7)); // growth, overlaps sectors
  return { a, b };
}

test('power mode keep-none restores the last synced content of every file', () => {
  const { dir, storage } = fresh();
  const { a, b } = powerScenario(storage, dir);
  assert.equal(storage.unsyncedWriteCount(), 4);
  storage.crashNow('power', { keepWrite: none });
  assert.deepEqual(fileBytes(a), Uint8Array.from([...bytes(512, 3), ...bytes(512, 1)]));
  assert.deepEqual(fileBytes(b), bytes(512, 2));
});

test('power mode keep-all keeps everything', () => {
  const { dir, storage } = fresh();
  const { a, b } = powerScenario(storage, dir);
  const beforeA = fileBytes(a);
  const beforeB = fileBytes(b);
  assert.equal(beforeA.length, 1034);
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
  const handle = durableFile(storage, dir, 'f', bytes(2048, 1));
  handle.write(256, bytes(1536, 2)); // covers sectors 0 (part), 1, 2, 3 (part)
  const [info] = storage.unsyncedWrites();
  assert.equal(info!.sectorCount, 4);
  const keepSectors = [true, false, true, false];
  const report = storage.crashNow('power', { torn: true, keepSector: (_, sector) => keepSectors[sector]! });
  assert.deepEqual(report.writes[0]!.sectorsKept, keepSectors);
  const expected = new Uint8Array(2048).fill(1);
  expected.fill(2, 256, 512); // sector 0, the part written
  expected.fill(2, 1024, 1536); // sector 2
  assert.deepEqual(fileBytes(path), expected);
});

test('torn mode: tearSector tears inside a sector, byte by byte; other sectors follow keepSector', () => {
  const { dir, storage } = fresh();
  const path = nodePath.join(dir, 'f');
  const handle = durableFile(storage, dir, 'f', bytes(1536, 1));
  handle.write(256, bytes(1024, 2)); // covers 256 bytes of sector 0, all of sector 1, 256 of sector 2
  const report = storage.crashNow('power', {
    torn: true,
    keepSector: (_, sector) => sector === 2,
    tearSector: (_, sector, covered) =>
      sector === 0 ? (byte) => byte < covered / 2 : sector === 1 ? (byte) => byte % 2 === 1 : null,
  });
  assert.deepEqual(report.writes[0]!.sectorsTorn, [0, 1]);
  assert.deepEqual(report.writes[0]!.sectorsKept, [false, false, true]);
  const expected = bytes(1536, 1);
  expected.fill(2, 256, 384); // the first half of the covered part of sector 0
  for (let at = 513; at < 1024; at += 2) expected[at] = 2; // odd bytes of sector 1
  expected.fill(2, 1024, 1280); // sector 2 kept
  assert.deepEqual(fileBytes(path), expected);
});

test('torn mode with seeds gives only sector-wise mixes, and some real mixes', () => {
  const seeds = Array.from({ length: 16 }, (_, i) => 1000 + i);
  console.log(`torn seeds: ${seeds.join(',')}`);
  const sectorSize = 512;
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
    const handle = durableFile(storage, dir, 'f', bytes(2048, 1));
    handle.write(0, bytes(2048, 2));
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

// ----- recovery after a kill: the hand-over of unsynced data ------------------------

/** Kills `storage` (process mode) and hands its unsynced data to a fresh storage, which it returns. */
function killAndRecover(
  storage: CrashStorage,
  options: ConstructorParameters<typeof CrashStorage>[1] = {},
): CrashStorage {
  storage.crashNow('process');
  const recovered = new CrashStorage(new FsStorage(), options);
  storage.handOverTo(recovered);
  return recovered;
}

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
    const handle = durableFile(storage, dir, 'f', bytes(2048, 1));
    handle.write(0, bytes(1024, 2));
    const recovered = killAndRecover(storage);
    recovered.open(path, { create: false }).write(1024, bytes(1024, 3));
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
  const sectorSize = 512;
  const durableByte = 1;
  const newByte = 2;
  const layout = (sectorsKept: readonly boolean[]): Uint8Array => {
    // The write covers bytes 256..1791 of a durable 2048-byte file: sectors 0 (part), 1, 2, 3 (part).
    const out = bytes(2048, durableByte);
    sectorsKept.forEach((kept, sector) => {
      if (!kept) return;
      const start = Math.max(256, sector * sectorSize);
      const stop = Math.min(1792, (sector + 1) * sectorSize);
      out.fill(newByte, start, stop);
    });
    return out;
  };
  const killed = (): { path: string; recovered: CrashStorage } => {
    const { dir, storage } = fresh();
    const handle = durableFile(storage, dir, 'f', bytes(2048, durableByte));
    handle.write(256, bytes(1536, newByte));
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

// ----- randomised cross-check against an in-memory reference ------------------------

type ReferenceRecord = { seq: number; file: number } & (
  | { kind: 'write'; position: number; data: Uint8Array }
  | { kind: 'truncate'; length: number }
);

function applyWrite(content: Uint8Array, position: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.max(content.length, position + data.length));
  out.set(content);
  out.set(data, position);
  return out;
}

function applyTruncate(content: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  out.set(content.subarray(0, Math.min(length, content.length)));
  return out;
}

function applyRecord(content: Uint8Array, record: ReferenceRecord): Uint8Array {
  return record.kind === 'write'
    ? applyWrite(content, record.position, record.data)
    : applyTruncate(content, record.length);
}

test('randomised: a power crash leaves exactly the durable content plus the kept records (in-memory reference)', () => {
  // The reference computes what must be left without before-images: the durable
  // content of each file with the kept unsynced records (or kept sectors) applied in call order.
  const baseSeed = Number(process.env.CRASH_STORAGE_SEED ?? 20240601);
  const runCount = 60;
  const opCountMax = 24;
  const sectorSize = 512;
  console.log(`reference-model seed: ${baseSeed} (runs ${runCount}; set CRASH_STORAGE_SEED to replay)`);
  for (let run = 0; run < runCount; run++) {
    const seed = baseSeed + run;
    const prng = new Prng(seed);
    const torn = prng.nextBool();
    const { dir, storage } = fresh();
    const names = ['x', 'y'];
    const handles = names.map((name) => durableFile(storage, dir, name, new Uint8Array(0)));
    const durable = names.map((): Uint8Array => new Uint8Array(0));
    let pending: ReferenceRecord[] = [];
    const opCount = 1 + prng.nextInt(opCountMax);
    for (let op = 0; op < opCount; op++) {
      const file = prng.nextInt(names.length);
      const handle = handles[file]!;
      const kind = prng.nextInt(10);
      if (kind < 6) {
        const position = prng.nextInt(4 * sectorSize);
        const data = new Uint8Array(1 + prng.nextInt(3 * sectorSize)).fill(1 + (op % 250));
        handle.write(position, data);
        pending.push({ seq: op, file, kind: 'write', position, data });
      } else if (kind < 8) {
        const length = prng.nextInt(5 * sectorSize);
        handle.truncate(length);
        pending.push({ seq: op, file, kind: 'truncate', length });
      } else {
        handle.sync();
        for (const record of pending) if (record.file === file) durable[file] = applyRecord(durable[file]!, record);
        pending = pending.filter((record) => record.file !== file);
      }
    }
    // Explicit random choices, so that the reference knows them.
    const writeInfos = storage.unsyncedWrites();
    assert.equal(writeInfos.length, pending.filter((record) => record.kind === 'write').length, `seed ${seed}`);
    const writeChoices = writeInfos.map((info) =>
      Array.from({ length: Math.max(1, info.sectorCount) }, () => prng.nextBool()),
    );
    const truncateChoices = Array.from({ length: storage.unsyncedTruncateCount() }, () => prng.nextBool());
    storage.crashNow('power', {
      torn,
      keepWrite: (index) => writeChoices[index]![0]!,
      keepSector: (index, sector) => writeChoices[index]![sector]!,
      keepTruncate: (index) => truncateChoices[index]!,
    });
    // Choice indexes count records in call order over all files, as `pending` holds them.
    const contents = [...durable];
    let writeIndex = 0;
    let truncateIndex = 0;
    for (const record of pending) {
      if (record.kind === 'truncate') {
        if (truncateChoices[truncateIndex++]!) contents[record.file] = applyRecord(contents[record.file]!, record);
        continue;
      }
      const choices = writeChoices[writeIndex++]!;
      if (!torn) {
        if (choices[0]!) contents[record.file] = applyRecord(contents[record.file]!, record);
        continue;
      }
      const first = Math.floor(record.position / sectorSize);
      const end = record.position + record.data.length;
      choices.forEach((kept, sector) => {
        if (!kept) return;
        const start = Math.max(record.position, (first + sector) * sectorSize);
        const stop = Math.min(end, (first + sector + 1) * sectorSize);
        contents[record.file] = applyWrite(
          contents[record.file]!,
          start,
          record.data.subarray(start - record.position, stop - record.position),
        );
      });
    }
    names.forEach((name, file) => {
      assert.deepEqual(fileBytes(nodePath.join(dir, name)), contents[file], `seed ${seed} torn ${torn} file ${name}`);
    });
  }
});

// ----- over the project's own node:fs storage ------------------------------------------

test('works the same over impl/nodeStorage.ts: lost unsynced write, vanished create, released lock', async () => {
  // Imported here rather than at the top so that the rest of this file does not
  // depend on impl/ (written alongside); a failure to import fails this test only.
  const { NodeStorage } = await import('../impl/nodeStorage.ts');
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
