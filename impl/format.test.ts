// The on-disk format of docs/format.md: the files and their sizes, the metadata
// slots (magic, version, checksum, sequence, the fallback from a torn newest slot),
// the consistency checks of open (E_CORRUPT, never repaired), the COW index, the
// secondary's place, and create over what a create cut short left behind.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { crc32 } from './checksum.ts';
import { cowFileSize, entrySize } from './cowStore.ts';
import { mapFileSize } from './mapFile.ts';
import { encodePage } from './mapPage.ts';
import { CowmapError, type ErrorCode } from './errors.ts';
import { decodeSlot, encodeSlot, metadataFileSize, slotSize } from './metadata.ts';
import { makeTemporaryDir, NodeStorage, removeTree } from './nodeStorage.ts';
import { ReplicatedVolume } from './replicatedVolume.ts';
import { flipByte, labelBytes, patchFile, readFileBytes } from './testFiles.ts';

const storage = new NodeStorage();
const regions = 10;
const regionSize = 1024;
let root: string;
let dir: string;

beforeEach(() => {
  root = makeTemporaryDir('cowmap-format-');
  dir = join(root, 'vol');
});

afterEach(() => removeTree(root));

function create(at = dir, options = {}): void {
  ReplicatedVolume.create(storage, at, { regions, regionSize }, options).close();
}

/** Runs `body` on an open volume and closes it. */
function using<T>(body: (volume: ReplicatedVolume) => T, at = dir): T {
  const volume = ReplicatedVolume.open(storage, at);
  try {
    return body(volume);
  } finally {
    volume.close();
  }
}

function resizeFile(path: string, length: number): void {
  const file = storage.open(path, { create: false });
  try {
    file.truncate(length);
  } finally {
    file.close();
  }
}

function fileSize(path: string): number {
  const file = storage.open(path, { create: false });
  try {
    return file.size();
  } finally {
    file.close();
  }
}

function expectOpenFails(code: ErrorCode, message?: RegExp): void {
  assert.throws(
    () => ReplicatedVolume.open(storage, dir).close(),
    (error: unknown) => {
      assert.ok(error instanceof CowmapError, String(error));
      assert.equal(error.code, code, error.message);
      if (message !== undefined) assert.match(error.message, message);
      return true;
    },
  );
}

const meta = () => join(dir, 'meta');

describe('files', () => {
  test('create lays out every file at its full size', () => {
    create();
    assert.deepEqual(storage.list(dir), ['cow', 'lock', 'map0', 'map1', 'meta', 'primary', 'secondary']);
    assert.deepEqual(storage.list(join(dir, 'secondary')), ['digests', 'image', 'replica']);
    assert.equal(fileSize(meta()), metadataFileSize);
    assert.equal(fileSize(join(dir, 'primary')), regions * regionSize);
    // One 4096-byte page holds the bits of up to 32640 regions.
    assert.equal(fileSize(join(dir, 'map0')), mapFileSize(regions));
    assert.equal(fileSize(join(dir, 'map1')), mapFileSize(regions));
    assert.equal(mapFileSize(regions), 4096);
    assert.equal(mapFileSize(32640), 4096);
    assert.equal(mapFileSize(32641), 8192);
    assert.equal(fileSize(join(dir, 'cow')), cowFileSize(regions, regionSize));
    assert.equal(
      cowFileSize(regions, regionSize),
      1024 + regions * regionSize,
      'index of 10 x 64 bytes rounded up to 1024',
    );
    assert.equal(fileSize(join(dir, 'secondary', 'image')), regions * regionSize);
    assert.equal(fileSize(join(dir, 'secondary', 'replica')), 512);
    // Sequence 1 is in slot 1; slot 0 is still zero.
    const bytes = readFileBytes(meta());
    assert.equal(new TextDecoder().decode(bytes.subarray(slotSize, slotSize + 8)), 'cowmapMD');
    assert.ok(bytes.subarray(0, slotSize).every((byte) => byte === 0));
    const record = decodeSlot(bytes.subarray(slotSize), 1, 'meta');
    assert.notEqual(record, 'absent');
    assert.deepEqual(
      record === 'absent'
        ? null
        : [record.sequence, record.regions, record.regionSize, record.cycle, record.phase, record.currentMap],
      [1, regions, regionSize, 0, 'idle', 0],
    );
  });

  test('a slot is little-endian with a CRC-32 over its first 508 bytes', () => {
    create();
    const slot = readFileBytes(meta(), slotSize, slotSize);
    const view = new DataView(slot.buffer, slot.byteOffset, slot.byteLength);
    assert.equal(view.getUint32(8, true), 2, 'format version');
    assert.equal(view.getBigUint64(16, true), 1n, 'sequence');
    assert.equal(view.getUint32(40, true), regions);
    assert.equal(view.getUint32(44, true), regionSize);
    assert.equal(view.getUint32(508, true), crc32(slot.subarray(0, 508)));
  });
});

describe('metadata checks (E_CORRUPT, never repaired)', () => {
  test('a flipped byte anywhere in the only valid slot: E_CORRUPT', () => {
    create();
    for (const position of [0, 12, 20, 41, 56, 300, 509]) {
      flipByte(meta(), slotSize + position);
      expectOpenFails('E_CORRUPT', /no valid metadata slot/);
      flipByte(meta(), slotSize + position);
      using((volume) => assert.equal(volume.phase, 'idle'));
    }
  });

  test('a flipped byte in both slots: E_CORRUPT', () => {
    create();
    using((volume) => volume.startCycle());
    flipByte(meta(), 100);
    flipByte(meta(), slotSize + 100);
    expectOpenFails('E_CORRUPT');
  });

  test('an unknown format version with a valid checksum: E_CORRUPT', () => {
    create();
    const slot = readFileBytes(meta(), slotSize, slotSize).slice();
    const view = new DataView(slot.buffer);
    view.setUint32(8, 3, true);
    view.setUint32(508, crc32(slot.subarray(0, 508)), true);
    patchFile(meta(), slotSize, slot);
    expectOpenFails('E_CORRUPT', /unknown format version 3/);
  });

  test('a torn newest slot falls back to the older valid slot, and the next update rewrites it', () => {
    create();
    using((volume) => volume.startCycle()); // sequence 2, slot 0: replicating
    using((volume) => assert.equal(volume.phase, 'replicating'));
    // Tear the newest slot: its second half never reached the disk.
    patchFile(meta(), 256, new Uint8Array(256).fill(0xaa));
    using((volume) => {
      assert.equal(volume.phase, 'idle');
      assert.equal(volume.cycle, 0);
      volume.startCycle();
    });
    using((volume) => {
      assert.equal(volume.phase, 'replicating');
      assert.equal(volume.cycle, 1);
    });
  });

  test('two valid slots that disagree: E_CORRUPT', () => {
    create();
    const bytes = readFileBytes(meta(), slotSize, slotSize);
    const record = decodeSlot(bytes, 1, 'meta');
    assert.notEqual(record, 'absent');
    if (record === 'absent') return;
    patchFile(meta(), 0, encodeSlot({ ...record, sequence: 2, regions: regions + 1 }));
    expectOpenFails('E_CORRUPT', /disagree/);
  });

  test('impossible fields under a valid checksum: E_CORRUPT', () => {
    create();
    const slot = readFileBytes(meta(), slotSize, slotSize).slice();
    const view = new DataView(slot.buffer);
    view.setUint32(44, 1000, true); // regionSize not a multiple of 512
    view.setUint32(508, crc32(slot.subarray(0, 508)), true);
    patchFile(meta(), slotSize, slot);
    expectOpenFails('E_CORRUPT', /regionSize/);
  });

  test('a metadata file of the wrong size: E_CORRUPT', () => {
    create();
    resizeFile(meta(), metadataFileSize - 1);
    expectOpenFails('E_CORRUPT', /1023 bytes/);
  });
});

describe('consistency of the other files', () => {
  for (const [name, size] of [
    ['primary', regions * regionSize - 512],
    ['map1', 3],
    ['cow', 100],
    ['secondary/image', regions * regionSize + 512],
  ] as const) {
    test(`${name} of the wrong size: E_CORRUPT`, () => {
      create();
      resizeFile(join(dir, name), size);
      expectOpenFails('E_CORRUPT');
    });
  }

  test('a missing file: E_CORRUPT', () => {
    create();
    storage.unlink(join(dir, 'map0'));
    expectOpenFails('E_CORRUPT', /map0 is missing/);
  });

  test('a missing or foreign secondary: E_CORRUPT', () => {
    create();
    create(join(root, 'other'));
    storage.rename(join(root, 'other', 'secondary', 'replica'), join(dir, 'secondary', 'replica'));
    expectOpenFails('E_CORRUPT', /another volume/);
    storage.unlink(join(dir, 'secondary', 'replica'));
    expectOpenFails('E_CORRUPT', /missing/);
  });

  test('bits set past the last region in a map: E_CORRUPT', () => {
    create();
    // region 10 of 10, under a valid CRC: not a torn page, a map of another geometry
    const bits = new Uint8Array(2);
    bits[1] = 0x04;
    patchFile(join(dir, 'map1'), 0, encodePage(bits, 1));
    expectOpenFails('E_CORRUPT', /past region 9/);
  });

  test('a failed open releases the lock', () => {
    create();
    resizeFile(join(dir, 'primary'), 1);
    expectOpenFails('E_CORRUPT');
    resizeFile(join(dir, 'primary'), regions * regionSize);
    using((volume) => assert.equal(volume.regions, regions));
  });
});

describe('COW index', () => {
  test('an entry counts only when the slot matches its digest and the primary still holds it (a torn preserve)', () => {
    create();
    using((volume) => {
      volume.writeRegion(4, labelBytes('old', regionSize));
      volume.writeRegion(6, labelBytes('old6', regionSize));
      volume.startCycle();
      volume.writeRegion(4, labelBytes('new', regionSize));
      volume.writeRegion(6, labelBytes('new6', regionSize));
      assert.equal(volume.state().cow, '0000101000');
    });
    // A preserve torn by a crash: the slot lost bytes and the primary was not
    // overwritten yet (the write waits for the preserve's sync).
    const indexSize = 1024;
    flipByte(join(dir, 'cow'), indexSize + 6 * regionSize + 1);
    patchFile(join(dir, 'primary'), 6 * regionSize, labelBytes('old6', regionSize));
    using((volume) => assert.equal(volume.state().cow, '0000100000'));
    // One flipped byte in the entry of region 4, whose slot is whole and whose
    // primary was overwritten: the entry was durable, so this is rot, not a tear.
    flipByte(join(dir, 'cow'), 4 * entrySize + 20);
    expectOpenFails('E_CORRUPT', /cow offset 256 region 4/);
    // A torn entry (half of it never written) over a slot the primary still
    // matches is a preserve cut short: not valid, W[4] empty.
    patchFile(join(dir, 'cow'), 4 * entrySize + 32, new Uint8Array(32));
    patchFile(join(dir, 'primary'), 4 * regionSize, labelBytes('old', regionSize));
    using((volume) => assert.equal(volume.state().cow, '0000000000'));
  });

  test('entries carry the metadata sequence in force at offset 48', () => {
    create();
    using((volume) => {
      volume.startCycle(); // sequence 2
      volume.writeRegion(3, labelBytes('x', regionSize));
    });
    const entry = readFileBytes(join(dir, 'cow'), 3 * entrySize, entrySize);
    const view = new DataView(entry.buffer, entry.byteOffset);
    assert.equal(view.getBigUint64(0, true), 1n, 'cycle');
    assert.equal(view.getBigUint64(48, true), 2n, 'metadata sequence');
    assert.equal(view.getUint32(60, true), crc32(entry.subarray(0, 60)));
  });

  test('the swap empties W without touching the index: entries name their cycle', () => {
    create();
    using((volume) => {
      volume.startCycle(); // an empty cycle
      volume.writeRegion(2, labelBytes('x', regionSize));
      assert.deepEqual(volume.preservedRegions(), [2]);
      volume.completeCycle();
      volume.startCycle();
      assert.deepEqual(volume.preservedRegions(), []);
    });
    using((volume) => assert.deepEqual(volume.preservedRegions(), []));
    const entry = readFileBytes(join(dir, 'cow'), 2 * entrySize, entrySize);
    assert.equal(
      new DataView(entry.buffer, entry.byteOffset).getBigUint64(0, true),
      1n,
      'the entry still names cycle 1',
    );
  });
});

describe('create and the secondary', () => {
  test('a directory without metadata is no volume (E_NOT_FOUND), and create refuses the leftovers (E_EXISTS)', () => {
    create();
    using((volume) => volume.writeRegion(1, labelBytes('data', regionSize)));
    storage.unlink(meta());
    expectOpenFails('E_NOT_FOUND');
    assert.throws(
      () => create(),
      (error: unknown) => error instanceof CowmapError && error.code === 'E_EXISTS',
    );
  });

  test('the secondary in another directory is recorded relative to the volume', () => {
    const secondaryDir = join(root, 'elsewhere', 'sec');
    create(dir, { secondaryDir });
    assert.deepEqual(storage.list(secondaryDir), ['digests', 'image', 'replica']);
    assert.ok(!storage.exists(join(dir, 'secondary')));
    using((volume) => {
      volume.writeRegion(0, labelBytes('A1', regionSize));
      volume.startCycle();
      volume.transfer(0);
      volume.completeCycle();
    });
    // Move the volume and its secondary together.
    storage.mkdir(join(root, 'moved'));
    storage.rename(dir, join(root, 'moved', 'vol'));
    storage.rename(join(root, 'elsewhere'), join(root, 'moved', 'elsewhere'));
    using(
      (volume) => assert.deepEqual(volume.readRegion(0, 'secondary'), labelBytes('A1', regionSize)),
      join(root, 'moved', 'vol'),
    );
  });

  test('the secondary must not be the volume directory: E_BAD_REQUEST', () => {
    assert.throws(
      () => ReplicatedVolume.create(storage, dir, { regions, regionSize }, { secondaryDir: dir }),
      (error: unknown) => error instanceof CowmapError && error.code === 'E_BAD_REQUEST',
    );
  });
});
