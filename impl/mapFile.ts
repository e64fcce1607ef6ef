// A change map on disk (DIR/map0 or DIR/map1): one bit per region, the bytes of a
// Bitmap as they are in memory. The metadata says which file is the current map C
// and which the next map X; the roles flip at the swap without touching either
// file (impl/metadata.ts). The in-memory bits mirror what is durable: a bit is set
// in memory only once its byte has been synced.

import { assert } from './assert.ts';
import { Bitmap } from './bitmap.ts';
import { CowmapError } from './errors.ts';
import { mapSize } from './geometry.ts';
import type { FileHandle } from './storage.ts';

export class MapFile {
  readonly file: FileHandle;
  readonly bits: Bitmap;

  private constructor(file: FileHandle, bits: Bitmap) {
    this.file = file;
    this.bits = bits;
  }

  /** Reads the whole map; E_CORRUPT when its size is wrong or bits past the last region are set. */
  static load(file: FileHandle, regions: number): MapFile {
    const sizeBytes = mapSize(regions);
    const actual = file.size();
    if (actual !== sizeBytes) {
      throw new CowmapError('E_CORRUPT', `open: ${file.path} is ${actual} bytes, ${regions} regions need ${sizeBytes}`);
    }
    const bytes = file.read(0, sizeBytes);
    if (!Bitmap.paddingClear(regions, bytes)) {
      throw new CowmapError('E_CORRUPT', `open: ${file.path} has bits set past region ${regions - 1}`);
    }
    return new MapFile(file, new Bitmap(regions, bytes));
  }

  has(region: number): boolean {
    return this.bits.has(region);
  }

  isClear(): boolean {
    return this.bits.isClear();
  }

  /** Sets one bit durably: one byte written, then the file synced (2 durable calls). */
  set(region: number): void {
    if (this.bits.has(region)) return;
    const index = region >> 3;
    const byte = this.bits.bytes[index]! | (1 << (region & 7));
    this.file.write(index, Uint8Array.of(byte));
    this.file.sync();
    this.bits.set(region);
  }

  /**
   * Clears every bit durably, writing zeros over the runs of bytes that have bits
   * set (nothing else: a cycle touches only the map bytes of its regions), then one
   * sync. A clear map costs no I/O.
   */
  clearAll(): void {
    const bytes = this.bits.bytes;
    let runStart = -1;
    let writeCount = 0;
    for (let index = 0; index <= bytes.length; index++) {
      const set = index < bytes.length && bytes[index] !== 0;
      if (set && runStart < 0) runStart = index;
      if (!set && runStart >= 0) {
        this.file.write(runStart, new Uint8Array(index - runStart));
        writeCount++;
        runStart = -1;
      }
    }
    assert(writeCount > 0 || this.bits.isClear(), 'map with bits set but no byte written');
    if (writeCount > 0) this.file.sync();
    this.bits.clearAll();
  }
}
