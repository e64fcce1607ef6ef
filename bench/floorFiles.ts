// The floor of a first write (writePath.ts): the same system calls as our first
// write (pread of the old region, SHA-256, pwrite of the COW slot and its 64-byte
// entry, fdatasync, pwrite of the region, fdatasync) made straight with node:fs on
// files of their own, with none of the volume's logic: what any implementation of
// this durable order pays on this file system.

import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { entrySize as cowEntryBytes } from '../impl/cowStore.ts';
import { sectorSize } from '../impl/geometry.ts';

/** The floor of a first write: our durable order in plain system calls, on files of its own. */
export class FloorFiles {
  private readonly primaryFd: number;
  private readonly cowFd: number;
  private readonly old: Uint8Array;
  private readonly entry = new Uint8Array(cowEntryBytes);

  constructor(
    dir: string,
    private readonly regions: number,
    private readonly regionSize: number,
  ) {
    const create = (name: string, sizeBytes: number) => {
      const fd = openSync(join(dir, name), 'wx+');
      ftruncateSync(fd, sizeBytes);
      fdatasyncSync(fd);
      return fd;
    };
    this.primaryFd = create('floor-primary', regions * regionSize);
    this.cowFd = create('floor-cow', this.slotOffset(regions));
    this.old = new Uint8Array(regionSize);
  }

  private slotOffset(region: number): number {
    return Math.ceil((this.regions * cowEntryBytes) / sectorSize) * sectorSize + region * this.regionSize;
  }

  /** Preserve the old region (slot + entry, one fdatasync), then the new data (one fdatasync). */
  firstWrite(region: number, data: Uint8Array): void {
    const { regionSize } = this;
    if (readSync(this.primaryFd, this.old, 0, regionSize, region * regionSize) !== regionSize)
      throw new Error(`floor: short read at region ${region}`);
    this.entry.set(createHash('sha256').update(this.old).digest(), 16);
    writeSync(this.cowFd, this.old, 0, regionSize, this.slotOffset(region));
    writeSync(this.cowFd, this.entry, 0, cowEntryBytes, region * cowEntryBytes);
    fdatasyncSync(this.cowFd);
    if (writeSync(this.primaryFd, data, 0, regionSize, region * regionSize) !== regionSize)
      throw new Error(`floor: short write at region ${region}`);
    fdatasyncSync(this.primaryFd);
  }

  close(): void {
    closeSync(this.primaryFd);
    closeSync(this.cowFd);
  }
}
