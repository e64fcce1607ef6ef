// A file laid out as `regions` slots of `regionSize` bytes from `baseOffset`: the
// primary image, the secondary image and the data area of the COW store. Writes
// are not durable until `sync`; the callers say when they sync and why.

import { assert } from './assert.ts';
import type { FileHandle } from './storage.ts';

export class RegionFile {
  readonly file: FileHandle;
  readonly regions: number;
  readonly regionSize: number;
  readonly baseOffset: number;

  constructor(file: FileHandle, regions: number, regionSize: number, baseOffset = 0) {
    this.file = file;
    this.regions = regions;
    this.regionSize = regionSize;
    this.baseOffset = baseOffset;
  }

  /** The size the file must have: its slots end the file. */
  get fileSize(): number {
    return this.baseOffset + this.regions * this.regionSize;
  }

  offsetOf(region: number): number {
    assert(
      Number.isInteger(region) && region >= 0 && region < this.regions,
      `region ${region} of ${this.regions} in ${this.file.path}`,
    );
    return this.baseOffset + region * this.regionSize;
  }

  readRegion(region: number): Uint8Array {
    const data = this.file.read(this.offsetOf(region), this.regionSize);
    assert(data.length === this.regionSize, `short read of region ${region} in ${this.file.path}`);
    return data;
  }

  /** pwrite of one whole region; durable only after `sync`. */
  writeRegion(region: number, data: Uint8Array): void {
    assert(data.length === this.regionSize, `region ${region} write of ${data.length} bytes in ${this.file.path}`);
    this.file.write(this.offsetOf(region), data);
  }

  sync(): void {
    this.file.sync();
  }
}
