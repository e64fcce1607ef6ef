// Rot in the volume's own files (detected, never repaired silently; docs/format.md,
// "Recovery"): one byte flipped in a synced file of a volume in the middle of a
// cycle, at many offsets of DIR/meta, both maps and DIR/cow. Whatever the byte,
// the volume must either refuse with E_CORRUPT (at open, or when a damaged copy
// is read) or run its cycles to the end with the secondary equal to the primary
// and the running cycle's point in time delivered: never a silent loss.

import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cowIndexSize } from './cowStore.ts';
import { CowmapError } from './errors.ts';
import { makeTemporaryDir, NodeStorage, readWholeFile, removeTree } from './nodeStorage.ts';
import { ReplicatedVolume } from './replicatedVolume.ts';

const storage = new NodeStorage();
/** The bit flipped (COWMAP_ROT_MASK to try another). */
const flipMask = Number(process.env.COWMAP_ROT_MASK ?? 0x10);
const regions = 17; // two map bytes
const regionSize = 512;
let root: string;
let pristine: string;
/** S as the running cycle must leave it: P as it was at the swap. */
let pointInTime: Uint8Array[];

function label(text: string): Uint8Array {
  const bytes = new Uint8Array(regionSize);
  bytes.set(new TextEncoder().encode(text));
  return bytes;
}

before(() => {
  root = makeTemporaryDir('cowmap-rot-');
  pristine = join(root, 'pristine');
  const volume = ReplicatedVolume.create(storage, pristine, { regions, regionSize });
  try {
    for (const region of [0, 3, 9, 16]) volume.writeRegion(region, label(`a${region}`));
    volume.startCycle();
    volume.transferRegions(volume.currentRegions());
    volume.completeCycle();
    for (const region of [1, 3, 12]) volume.writeRegion(region, label(`b${region}`)); // idle: X bits in the map
    volume.startCycle();
    pointInTime = Array.from({ length: regions }, (_, region) => volume.readRegion(region));
    // Preserved copies (W) with their next bits deferred, one of them in C, one sent.
    for (const region of [3, 5, 14]) volume.writeRegion(region, label(`c${region}`));
    volume.transfer(1);
  } finally {
    volume.close();
  }
});

after(() => removeTree(root));

/** The offsets to flip in each file: every structure's fields, sampled. */
function flipOffsets(): [string, number[]][] {
  const range = (first: number, end: number, step: number) =>
    Array.from({ length: Math.ceil((end - first) / step) }, (_, i) => first + i * step);
  const mapOffsets = [0, 1, 2, 3, 100, 4079, 4080, 4087, 4088, 4092, 4095];
  const indexSize = cowIndexSize(regions);
  const slots = [3, 5, 14].flatMap((region) => [
    indexSize + region * regionSize,
    indexSize + region * regionSize + 300,
  ]);
  // COWMAP_ROT_EVERY_BYTE=1: every byte of the metadata and the COW index (slow).
  const step = process.env.COWMAP_ROT_EVERY_BYTE === '1' ? 1 : 0;
  return [
    [
      'meta',
      step === 1 ? range(0, 1024, 1) : [...range(0, 64, 3), 200, 508, 511, ...range(512, 576, 3), 700, 1020, 1023],
    ],
    ['map0', mapOffsets],
    ['map1', mapOffsets],
    ['cow', [...range(0, 17 * 64, step === 1 ? 1 : 5), ...slots]],
  ];
}

/** Finishes the running cycle and runs one more; returns how it ended. */
function runToTheEnd(dir: string): 'E_CORRUPT' | 'synced' {
  let volume: ReplicatedVolume;
  try {
    volume = ReplicatedVolume.open(storage, dir);
  } catch (error) {
    if (error instanceof CowmapError && error.code === 'E_CORRUPT') return 'E_CORRUPT';
    throw error;
  }
  try {
    if (volume.phase === 'replicating') {
      volume.transferRegions(volume.currentRegions());
      for (let region = 0; region < regions; region++) {
        assert.deepEqual(
          volume.readRegion(region, 'secondary'),
          pointInTime[region],
          `region ${region}: the point in time of the running cycle`,
        );
      }
      volume.completeCycle();
    }
    volume.startCycle();
    volume.transferRegions(volume.currentRegions());
    volume.completeCycle();
    const state = volume.state();
    assert.deepEqual(state.secondary, state.primary, 'S equals P after the cycles');
    return 'synced';
  } catch (error) {
    if (error instanceof CowmapError && error.code === 'E_CORRUPT') return 'E_CORRUPT';
    throw error;
  } finally {
    volume.close();
  }
}

describe('a flipped byte in a synced file of the volume', () => {
  test('without rot the volume ends in sync', () => {
    const dir = join(root, 'clean');
    cpSync(pristine, dir, { recursive: true });
    assert.equal(runToTheEnd(dir), 'synced');
  });

  for (const [name, offsets] of flipOffsets()) {
    test(`${name}: E_CORRUPT or S = P with the point in time, at each of ${offsets.length} offsets`, () => {
      const outcomes = { E_CORRUPT: 0, synced: 0 };
      for (const offset of offsets) {
        const dir = join(root, `${name}-${offset}`);
        cpSync(pristine, dir, { recursive: true });
        const path = join(dir, name);
        const file = storage.open(path, { create: false });
        try {
          file.write(offset, Uint8Array.of(readWholeFile(path)[offset]! ^ flipMask));
          file.sync();
        } finally {
          file.close();
        }
        try {
          outcomes[runToTheEnd(dir)]++;
        } catch (error) {
          assert.fail(`${name} offset ${offset}: ${error instanceof Error ? error.message : String(error)}`);
        } finally {
          removeTree(dir);
        }
      }
      // Each file has bytes whose rot is caught, and X (all clear on disk: its bits are deferred) bytes whose rot is harmless.
      // (With the default bit: another may only set map bits, which is harmless.)
      if (flipMask === 0x10)
        assert.ok(outcomes.E_CORRUPT > 0 || name === 'map1', `${name}: ${JSON.stringify(outcomes)}`);
    });
  }
});

describe('a flipped byte in a map of an idle volume', () => {
  let idle: string;
  before(() => {
    idle = join(root, 'idle');
    const volume = ReplicatedVolume.create(storage, idle, { regions, regionSize });
    try {
      volume.writeRegion(2, label('a2'));
      volume.startCycle();
      volume.transferRegions(volume.currentRegions());
      volume.completeCycle();
      for (const region of [0, 9, 16]) volume.writeRegion(region, label(`b${region}`)); // X = map0 in cycle 1
    } finally {
      volume.close();
    }
  });

  for (const name of ['map0', 'map1']) {
    test(`${name}: each bit of its used bytes, the stamp and the CRC: E_CORRUPT or S = P`, () => {
      const outcomes = { E_CORRUPT: 0, synced: 0 };
      for (const offset of [0, 1, 2, 4080, 4081, 4088, 4092, 4095]) {
        for (let bit = 0; bit < 8; bit++) {
          const dir = join(root, `idle-${name}-${offset}-${bit}`);
          cpSync(idle, dir, { recursive: true });
          const path = join(dir, name);
          const file = storage.open(path, { create: false });
          try {
            file.write(offset, Uint8Array.of(readWholeFile(path)[offset]! ^ (1 << bit)));
            file.sync();
          } finally {
            file.close();
          }
          try {
            outcomes[runToTheEnd(dir)]++;
          } catch (error) {
            assert.fail(
              `${name} offset ${offset} bit ${bit}: ${error instanceof Error ? error.message : String(error)}`,
            );
          } finally {
            removeTree(dir);
          }
        }
      }
      // Clearing the bit of region 0, 9 or 16 in X loses a change: caught.
      if (name === 'map0') assert.ok(outcomes.E_CORRUPT >= 3, JSON.stringify(outcomes));
    });
  }
});
