// The write path's baseline (writePath.ts): a plain file of the volume's size,
// written with a pwrite + fdatasync loop.

import { closeSync, fdatasyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';

/** A plain file of the volume's size: the baseline's pwrite + fdatasync loop. */
export class PlainFile {
  private readonly fd: number;

  constructor(
    readonly path: string,
    private readonly sizeBytes: number,
  ) {
    this.fd = openSync(path, 'wx+');
    ftruncateSync(this.fd, sizeBytes);
    fdatasyncSync(this.fd);
  }

  /** One region: pwrite, then fdatasync (a write acknowledged once durable). */
  writeRegion(region: number, data: Uint8Array): void {
    const written = writeSync(this.fd, data, 0, data.length, region * data.length);
    if (written !== data.length) throw new Error(`baseline: short write of ${written} bytes at region ${region}`);
    fdatasyncSync(this.fd);
  }

  readRegion(region: number, regionSize: number): Uint8Array {
    const buffer = new Uint8Array(regionSize);
    const count = readSync(this.fd, buffer, 0, regionSize, region * regionSize);
    if (count !== regionSize) throw new Error(`baseline: short read at region ${region}`);
    return buffer;
  }

  close(): void {
    closeSync(this.fd);
  }

  get size(): number {
    return this.sizeBytes;
  }
}
