// Corruption of the volume's own files (detected, never repaired silently;
// docs/format.md, "Recovery"): each damaged structure is either a torn
// update that recovery may keep (with evidence that nothing is lost) or E_CORRUPT
// naming the file and the region. Each case flips or tears real bytes on disk.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { crc32 } from './checksum.ts';
import { cowIndexSize, entrySize } from './cowStore.ts';
import { CowmapError, type ErrorCode } from './errors.ts';
import { checkPage, encodePage, pageBytes } from './mapPage.ts';
import { encodeSlot, slotSize } from './metadata.ts';
import { makeTemporaryDir, NodeStorage, readWholeFile, removeTree } from './nodeStorage.ts';
import { ReplicatedVolume } from './replicatedVolume.ts';
import { flipByte, labelBytes, patchFile } from './testFiles.ts';

const storage = new NodeStorage();
const regions = 20; // two map bytes, so a bit of the second byte is covered too
const regionSize = 1024;
let root: string;
let dir: string;

beforeEach(() => {
  root = makeTemporaryDir('cowmap-corruption-');
  dir = join(root, 'vol');
});

afterEach(() => removeTree(root));

function create(): void {
  ReplicatedVolume.create(storage, dir, { regions, regionSize }).close();
}

function using<T>(body: (volume: ReplicatedVolume) => T, options = {}): T {
  const volume = ReplicatedVolume.open(storage, dir, options);
  try {
    return body(volume);
  } finally {
    volume.close();
  }
}

function expectOpenFails(code: ErrorCode, ...messages: RegExp[]): void {
  assert.throws(
    () => ReplicatedVolume.open(storage, dir).close(),
    (error: unknown) => {
      assert.ok(error instanceof CowmapError, String(error));
      assert.equal(error.code, code, error.message);
      for (const message of messages) assert.match(error.message, message);
      return true;
    },
  );
}

const file = (name: string) => join(dir, name);

/** Runs a whole cycle: swap, send every region of C, complete. */
function cycle(volume: ReplicatedVolume): void {
  volume.startCycle();
  volume.transferRegions(volume.currentRegions());
  volume.completeCycle();
}

describe('COW store', () => {
  test('a flipped byte in a synced COW slot after the primary was overwritten: E_CORRUPT at open, not a silent wrong transfer', () => {
    create();
    using((volume) => {
      volume.writeRegion(6, labelBytes('old6', regionSize));
      volume.startCycle();
      volume.writeRegion(6, labelBytes('new6', regionSize)); // W[6] = old6, synced, then P[6] = new6
    });
    flipByte(file('cow'), cowIndexSize(regions) + 6 * regionSize + 100);
    expectOpenFails('E_CORRUPT', /cow offset \d+ region 6/, /not a torn preserve/);
  });

  test('the same flipped byte before the primary was overwritten is a torn preserve: W[6] empty, the cycle sends P', () => {
    create();
    using((volume) => {
      volume.writeRegion(6, labelBytes('old6', regionSize));
      volume.startCycle();
      volume.writeRegion(6, labelBytes('new6', regionSize));
    });
    // As if the crash came before the overwrite: P still holds what W's entry names.
    patchFile(file('primary'), 6 * regionSize, labelBytes('old6', regionSize));
    flipByte(file('cow'), cowIndexSize(regions) + 6 * regionSize + 100);
    using((volume) => {
      assert.deepEqual(volume.preservedRegions(), []);
      volume.transferRegions(volume.currentRegions());
      volume.completeCycle();
      assert.deepEqual(volume.readRegion(6, 'secondary'), labelBytes('old6', regionSize));
    });
  });

  test('a flipped byte in a COW entry that leaves a written region uncovered: E_CORRUPT', () => {
    create();
    using((volume) => {
      volume.startCycle();
      // Region 2 is outside C: its next bit lives only in the entry until completion.
      volume.writeRegion(2, labelBytes('new2', regionSize));
    });
    flipByte(file('cow'), 2 * entrySize + 20);
    expectOpenFails('E_CORRUPT', /cow offset 128 region 2/);
  });

  test('a torn COW entry of a region the cycle did not overwrite opens (a preserve cut short)', () => {
    create();
    using((volume) => {
      volume.startCycle();
      volume.writeRegion(2, labelBytes('new2', regionSize));
    });
    flipByte(file('cow'), 2 * entrySize + 20);
    patchFile(file('primary'), 2 * regionSize, new Uint8Array(regionSize)); // P never overwritten
    using((volume) => assert.deepEqual(volume.preservedRegions(), []));
  });
});

describe('metadata', () => {
  test('a torn first update (tearing inside the sector) opens with the other slot, not "unknown format version 0"', () => {
    create();
    // The first update goes to slot 0, all zeros until then; only its first 12
    // bytes (magic, and a version still zero) reached the disk.
    const record = encodeSlot({
      sequence: 2,
      volumeId: new Uint8Array(16),
      regions,
      regionSize,
      cycle: 1,
      phase: 'replicating',
      currentMap: 1,
      secondary: '',
    });
    const torn = new Uint8Array(slotSize);
    torn.set(record.subarray(0, 8));
    patchFile(file('meta'), 0, torn);
    using((volume) => {
      assert.equal(volume.phase, 'idle');
      assert.equal(volume.cycle, 0);
      volume.startCycle(); // rewrites slot 0 whole
    });
    using((volume) => assert.equal(volume.phase, 'replicating'));
  });

  test('a flipped byte in the winning slot with a later map page: E_CORRUPT naming meta and the slot, never a silent roll-back', () => {
    create();
    using((volume) => {
      volume.startCycle(); // sequence 2, slot 0
      volume.completeCycle(); // sequence 3, slot 1
      volume.writeRegion(5, labelBytes('x', regionSize)); // X's page stamped with sequence 3
    });
    // Without the rule slot 0 (sequence 2: replicating, cycle 1) would win and the
    // write's next bit would sit in what it takes for the current map.
    flipByte(file('meta'), slotSize + 30);
    expectOpenFails('E_CORRUPT', /meta slot 1 fails its checksum/, /sequence 3/);
  });

  test('a flipped byte in the winning slot with a later COW entry: E_CORRUPT', () => {
    create();
    using((volume) => {
      volume.startCycle(); // sequence 2, slot 0
      volume.writeRegion(3, labelBytes('x', regionSize)); // entry stamped with sequence 2
    });
    flipByte(file('meta'), 100);
    expectOpenFails('E_CORRUPT', /meta slot 0/, /cow/);
  });

  test('a flipped byte in the losing slot is harmless at open, and scrub reports it', () => {
    create();
    using((volume) => volume.startCycle()); // sequence 2 in slot 0; slot 1 holds sequence 1
    flipByte(file('meta'), slotSize + 30);
    using((volume) => {
      assert.equal(volume.phase, 'replicating');
      const report = volume.scrub({ repair: false });
      const finding = report.findings.find((entry) => entry.file === file('meta'));
      assert.ok(finding !== undefined, JSON.stringify(report.findings));
      assert.equal(finding.offset, slotSize);
      assert.equal(finding.region, null);
    });
  });
});

describe('maps', () => {
  test('a map bit cleared by a flipped byte is caught: E_CORRUPT naming the file, the page and the region', () => {
    create();
    using((volume) => volume.writeRegion(11, labelBytes('x', regionSize))); // X = map1 while idle in cycle 0
    assert.ok(checkPage(readWholeFile(file('map1'))).valid);
    flipByte(file('map1'), 11 >> 3, 1 << (11 & 7));
    expectOpenFails('E_CORRUPT', /map1 page 0/, /region 11/);
  });

  test('a torn page update (a bit being set, CRC stale) keeps its bits; a read-write open rewrites it, a read-only one does not', () => {
    create();
    using((volume) => volume.writeRegion(11, labelBytes('x', regionSize)));
    // The update that sets bit 12 tore: the bit reached the disk, the CRC did not.
    flipByte(file('map1'), 12 >> 3, 1 << (12 & 7));
    const torn = readWholeFile(file('map1'));
    assert.equal(checkPage(torn).valid, false);
    using((volume) => assert.deepEqual(volume.nextRegions(), [11, 12]), { readOnly: true });
    assert.deepEqual(readWholeFile(file('map1')), torn, 'a read-only open writes nothing');
    using((volume) => assert.deepEqual(volume.nextRegions(), [11, 12]));
    const page = readWholeFile(file('map1'));
    assert.ok(checkPage(page).valid, 'rewritten with a fresh CRC');
    using((volume) => {
      cycle(volume);
      assert.deepEqual(volume.readRegion(11, 'secondary'), labelBytes('x', regionSize));
    });
  });

  test('scrub finds a map page that rotted while the volume was open, and --repair rewrites it and marks its regions', () => {
    create();
    const volume = ReplicatedVolume.open(storage, dir);
    try {
      volume.writeRegion(11, labelBytes('x', regionSize));
      flipByte(file('map1'), 100);
      const report = volume.scrub({ repair: true });
      const finding = report.findings.find((entry) => entry.file === file('map1'));
      assert.ok(finding?.repaired, JSON.stringify(report.findings));
      assert.equal(finding.offset, 0);
      assert.ok(report.repairedRegions.includes(11));
      assert.ok(checkPage(readWholeFile(file('map1'))).valid);
      assert.deepEqual(volume.scrub({ repair: false }).findings, []);
    } finally {
      volume.close();
    }
  });

  test('map pages are 4096 bytes: bits, the metadata sequence, reserved zeros, a CRC-32', () => {
    create();
    using((volume) => {
      volume.startCycle(); // sequence 2
      volume.completeCycle(); // sequence 3
      volume.writeRegion(19, labelBytes('x', regionSize)); // X = map0 in cycle 1
    });
    const page = readWholeFile(file('map0'));
    assert.equal(page.length, pageBytes);
    const view = new DataView(page.buffer, page.byteOffset);
    assert.equal(page[2], 1 << 3, 'region 19: byte 2, bit 3');
    assert.equal(view.getBigUint64(4080, true), 3n);
    assert.equal(view.getUint32(4088, true), 0);
    assert.equal(view.getUint32(4092, true), crc32(page.subarray(0, 4092)));
    assert.deepEqual(page, encodePage(Uint8Array.of(0, 0, 8), 3));
  });
});

describe('the secondary through the volume', () => {
  test('a flipped byte in a sent region of the secondary image is E_CORRUPT on read, not read back silently', () => {
    create();
    using((volume) => {
      volume.writeRegion(4, labelBytes('sent', regionSize));
      cycle(volume);
    });
    flipByte(join(dir, 'secondary', 'image'), 4 * regionSize + 2);
    using(
      (volume) => {
        assert.throws(
          () => volume.readRegion(4, 'secondary'),
          (error: unknown) =>
            error instanceof CowmapError && error.code === 'E_CORRUPT' && /region 4/.test(error.message),
        );
      },
      { readOnly: true },
    );
  });
});

describe('scrub of a directory (ReplicatedVolume.scrubDir)', () => {
  /** Completes a running cycle if any, then runs one more: S must then equal P. */
  function resync(): void {
    using((volume) => {
      if (volume.phase === 'replicating') {
        volume.transferRegions(volume.currentRegions());
        volume.completeCycle();
      }
      cycle(volume);
      const state = volume.state();
      assert.deepEqual(state.secondary, state.primary, 'S equals P after the repair and a cycle');
    });
  }

  test('a flipped byte past the last region of a map page: reported read-only, kept by a read-write open', () => {
    create();
    using((volume) => {
      volume.writeRegion(3, labelBytes('three', regionSize));
      cycle(volume);
    });
    flipByte(file('map0'), 2000);
    const report = ReplicatedVolume.scrubDir(storage, dir, { repair: false });
    assert.deepEqual(
      report.findings.map((finding) => [finding.file, finding.offset, finding.repaired]),
      [[file('map0'), 0, false]],
    );
    using((volume) => assert.deepEqual(volume.nextRegions(), []));
    assert.deepEqual(ReplicatedVolume.scrubDir(storage, dir, { repair: false }).findings, []);
  });

  test('a cleared map bit: open refuses, scrub --repair marks the page in X, and a cycle makes S equal P', () => {
    create();
    using((volume) => volume.writeRegion(11, labelBytes('x', regionSize)));
    flipByte(file('map1'), 11 >> 3, 1 << (11 & 7));
    assert.throws(
      () => ReplicatedVolume.scrubDir(storage, dir, { repair: false }),
      (error: unknown) => error instanceof CowmapError && error.code === 'E_CORRUPT',
    );
    const report = ReplicatedVolume.scrubDir(storage, dir, { repair: true });
    const finding = report.findings.find((entry) => entry.file === file('map1'));
    assert.ok(finding?.repaired && finding.region === 11, JSON.stringify(report.findings));
    assert.ok(report.repairedRegions.includes(11));
    resync();
  });

  test('a rotted COW copy: scrub --repair drops it and marks the region, and the cycles make S equal P', () => {
    create();
    using((volume) => {
      volume.writeRegion(6, labelBytes('old6', regionSize));
      volume.startCycle();
      volume.writeRegion(6, labelBytes('new6', regionSize));
      volume.writeRegion(7, labelBytes('new7', regionSize));
    });
    flipByte(file('cow'), cowIndexSize(regions) + 7 * regionSize + 100);
    const report = ReplicatedVolume.scrubDir(storage, dir, { repair: true });
    const finding = report.findings.find((entry) => entry.file === file('cow'));
    assert.ok(finding?.repaired && finding.region === 7, JSON.stringify(report.findings));
    assert.deepEqual(ReplicatedVolume.scrubDir(storage, dir, { repair: false }).findings, []);
    using((volume) => {
      assert.deepEqual(volume.preservedRegions(), [6]);
      assert.ok(volume.nextRegions().includes(7));
    });
    resync();
  });

  test('a later record lost from the metadata is not repairable: E_CORRUPT even with --repair', () => {
    create();
    using((volume) => {
      volume.startCycle();
      volume.writeRegion(3, labelBytes('x', regionSize));
    });
    flipByte(file('meta'), 100);
    assert.throws(
      () => ReplicatedVolume.scrubDir(storage, dir, { repair: true }),
      (error: unknown) =>
        error instanceof CowmapError && error.code === 'E_CORRUPT' && /meta slot 0/.test(error.message),
    );
  });
});

describe('scrub of the COW index while idle', () => {
  test('an entry failing its CRC is a finding in any phase, and --repair zeroes it', () => {
    create();
    using((volume) => {
      volume.startCycle();
      volume.writeRegion(2, labelBytes('x', regionSize));
      volume.transferRegions(volume.currentRegions());
      volume.completeCycle();
      cycle(volume);
    });
    flipByte(file('cow'), 2 * entrySize + 5);
    const report = ReplicatedVolume.scrubDir(storage, dir, { repair: false });
    assert.deepEqual(
      report.findings.map((finding) => [finding.file, finding.offset, finding.region]),
      [[file('cow'), 2 * entrySize, 2]],
    );
    const repaired = ReplicatedVolume.scrubDir(storage, dir, { repair: true });
    assert.ok(repaired.findings.every((finding) => finding.repaired));
    assert.deepEqual(readWholeFile(file('cow')).subarray(2 * entrySize, 3 * entrySize), new Uint8Array(entrySize));
    assert.deepEqual(ReplicatedVolume.scrubDir(storage, dir, { repair: false }).findings, []);
  });
});
