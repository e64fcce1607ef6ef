// A change map on disk (DIR/map0 or DIR/map1): one bit per region, the bytes of a
// Bitmap as they are in memory. The metadata says which file is the current map C
// and which the next map X; the roles flip at the swap without touching either
// file (impl/metadata.ts). The in-memory bits mirror what is durable (once the
// call that set them has returned; a failed call poisons the volume), with one
// exception: a bit set by `setDeferred` is only in memory until `flush` writes
// its byte and syncs. The volume uses it only for a next bit that a durable COW
// entry already implies (recovery rebuilds it from the entry), and flushes before
// that entry goes stale.

import { assert } from './assert.ts';
import { Bitmap } from './bitmap.ts';
import { CowmapError } from './errors.ts';
import { mapSize } from './geometry.ts';
import type { FileHandle } from './storage.ts';

export class MapFile {
  readonly file: FileHandle;
  readonly bits: Bitmap;
  /** The bytes (by index) holding bits set by setDeferred and not yet flushed. */
  private readonly deferredBytes: Bitmap;

  private constructor(file: FileHandle, bits: Bitmap) {
    this.file = file;
    this.bits = bits;
    this.deferredBytes = new Bitmap(bits.bytes.length);
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

  /** True while bits set by setDeferred are only in memory. */
  get hasDeferred(): boolean {
    return !this.deferredBytes.isClear();
  }

  /**
   * Sets one bit durably: its byte written (with any deferred bits it holds), then
   * the file synced (2 durable calls). No I/O when the bit is set.
   */
  set(region: number): void {
    if (this.bits.has(region)) return;
    const index = region >> 3;
    this.bits.set(region);
    this.file.write(index, this.bits.bytes.subarray(index, index + 1));
    this.file.sync();
  }

  /**
   * Sets one bit in memory only, no I/O: for a bit that another durable record
   * implies until `flush`. No effect when the bit is set.
   */
  setDeferred(region: number): void {
    if (this.bits.has(region)) return;
    this.bits.set(region);
    this.deferredBytes.set(region >> 3);
  }

  /**
   * Makes the deferred bits durable: the bytes holding them written, one write per
   * run of adjacent bytes, then one sync. No I/O when none is deferred.
   */
  flush(): void {
    if (this.deferredBytes.isClear()) return;
    this.writeRuns((index) => this.deferredBytes.has(index), (first, end) => this.bits.bytes.slice(first, end));
    this.file.sync();
    this.deferredBytes.clearAll();
  }

  /**
   * Writes `bytesOf(first, end)` at `first` for each run [first, end) of adjacent
   * marked byte indexes, in one pass over the map (no list of indexes is built).
   */
  private writeRuns(marked: (index: number) => boolean, bytesOf: (first: number, end: number) => Uint8Array): number {
    const length = this.bits.bytes.length;
    let writeCount = 0;
    for (let start = 0; start < length; ) {
      if (!marked(start)) {
        start++;
        continue;
      }
      let end = start + 1;
      while (end < length && marked(end)) end++;
      this.file.write(start, bytesOf(start, end));
      writeCount++;
      start = end;
    }
    return writeCount;
  }

  /**
   * Clears every bit durably, writing zeros over the runs of bytes that have bits
   * set (nothing else: a cycle touches only the map bytes of its regions), then one
   * sync. A clear map costs no I/O.
   */
  clearAll(): void {
    assert(this.deferredBytes.isClear(), 'clearing a map with deferred bits');
    const bytes = this.bits.bytes;
    const writeCount = this.writeRuns((index) => bytes[index] !== 0, (first, end) => new Uint8Array(end - first));
    assert(writeCount > 0 || this.bits.isClear(), 'map with bits set but no byte written');
    if (writeCount > 0) this.file.sync();
    this.bits.clearAll();
  }
}
