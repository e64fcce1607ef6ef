// A volume opened read-only (docs/format.md, "Read-only open"): recovery happens in
// memory only, nothing is written or synced, every call that would write is
// refused with E_BAD_REQUEST naming the call and the phase; reads and state work.
// Also the bound on one read (E_SIZE past 1 GiB).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { CowmapError, type ErrorCode } from './errors.ts';
import { encodePage } from './mapPage.ts';
import { makeTemporaryDir, NodeStorage, readWholeFile, removeTree } from './nodeStorage.ts';
import { readBytesMax, ReplicatedVolume } from './replicatedVolume.ts';
import { labelBytes } from './testFiles.ts';

const storage = new NodeStorage();
const regions = 12;
const regionSize = 512;
let root: string;
let dir: string;

beforeEach(() => {
  root = makeTemporaryDir('cowmap-readonly-');
  dir = join(root, 'vol');
});

afterEach(() => removeTree(root));

function expectCode(call: () => unknown, code: ErrorCode, message?: RegExp): void {
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof CowmapError, String(error));
    assert.equal(error.code, code, error.message);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

/** Every file of the volume and its secondary, by name. */
function snapshot(): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const name of storage.list(dir)) {
    if (name === 'secondary' || name === 'lock') continue;
    files.set(name, readWholeFile(join(dir, name)));
  }
  for (const name of storage.list(join(dir, 'secondary')))
    files.set(`secondary/${name}`, readWholeFile(join(dir, 'secondary', name)));
  return files;
}

describe('read-only open', () => {
  test('refuses every call that would write, naming the call and the phase; reads and state work', () => {
    const writer = ReplicatedVolume.create(storage, dir, { regions, regionSize });
    writer.writeRegion(1, labelBytes('one', regionSize));
    writer.startCycle();
    writer.writeRegion(2, labelBytes('two', regionSize));
    writer.close();
    const before = snapshot();
    const volume = ReplicatedVolume.open(storage, dir, { readOnly: true });
    try {
      assert.equal(volume.readOnly, true);
      const refused = /while replicating: the volume is open read-only/;
      expectCode(() => volume.writeRegion(0, labelBytes('x', regionSize)), 'E_BAD_REQUEST', refused);
      expectCode(() => volume.write(0, labelBytes('x', regionSize)), 'E_BAD_REQUEST', refused);
      expectCode(
        () => volume.startCycle(),
        'E_BAD_REQUEST',
        /startCycle\(\) while replicating: the volume is open read-only/,
      );
      expectCode(() => volume.transfer(1), 'E_BAD_REQUEST', /transfer\(region 1\)/);
      expectCode(() => volume.transferRegions([1]), 'E_BAD_REQUEST', refused);
      expectCode(() => volume.completeCycle(), 'E_BAD_REQUEST', /completeCycle/);
      expectCode(() => volume.scrub({ repair: true }), 'E_BAD_REQUEST', /scrub\(repair\)/);
      assert.deepEqual(volume.readRegion(2), labelBytes('two', regionSize));
      assert.deepEqual(volume.read(regionSize, regionSize), labelBytes('one', regionSize));
      const state = volume.state();
      assert.equal(state.phase, 'replicating');
      assert.equal(state.current, '010000000000');
      assert.equal(state.next, '001000000000', 'X rebuilt from the COW entry, in memory');
      assert.equal(state.cow, '001000000000');
      assert.deepEqual(volume.scrub({ repair: false }).findings, []);
    } finally {
      volume.close();
    }
    assert.deepEqual(snapshot(), before, 'nothing written');
  });

  test('recovery of a cut-short completion happens in memory only', () => {
    const writer = ReplicatedVolume.create(storage, dir, { regions, regionSize });
    writer.writeRegion(3, labelBytes('three', regionSize));
    writer.startCycle();
    writer.transfer(3);
    writer.completeCycle();
    writer.close();
    // As if the completion crashed after its metadata update: C (map1 in cycle 1) still set.
    const map1 = join(dir, 'map1');
    const file = storage.open(map1, { create: false });
    file.write(0, encodePage(Uint8Array.of(1 << 3), 3));
    file.sync();
    file.close();
    const before = snapshot();
    const volume = ReplicatedVolume.open(storage, dir, { readOnly: true });
    try {
      assert.equal(volume.phase, 'idle');
      assert.equal(volume.state().current, '000000000000');
    } finally {
      volume.close();
    }
    assert.deepEqual(snapshot(), before, 'the map is not cleared on disk');
    // A read-write open finishes the clearing on disk.
    ReplicatedVolume.open(storage, dir).close();
    assert.deepEqual(readWholeFile(map1), encodePage(new Uint8Array(2), 3));
  });
});

describe('a bound on one read', () => {
  test('a read of more than 1 GiB is E_SIZE, saying to read in parts (not a RangeError)', () => {
    // Sparse files: 2 GiB of volume costs nothing until written.
    const volume = ReplicatedVolume.create(storage, dir, { regions: 2048, regionSize: 1 << 20 });
    try {
      expectCode(() => volume.read(0, readBytesMax + 1), 'E_SIZE', /read in parts/);
      expectCode(() => volume.read(0, 5368709120), 'E_RANGE');
      assert.equal(volume.read(readBytesMax - 4, 8).length, 8);
    } finally {
      volume.close();
    }
  });
});
