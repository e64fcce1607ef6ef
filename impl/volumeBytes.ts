// The byte API of the reference volume: `write` (durable, region by region),
// `writeMany` and `flush` (the NBD write path: group commit, durable at flush;
// docs/format.md, "The buffered write path") and `read`.

import { assert } from './assert.ts';
import { CowmapError } from './errors.ts';

import type { ByteWrite, VolumeName } from './volumeCore.ts';
import { VolumeSteps } from './volumeSteps.ts';

/** The most bytes one read returns: the result is one buffer in memory. */
export const readBytesMax = 2 ** 30;

export class VolumeBytes extends VolumeSteps {
  // ---------------------------------------------------------------- byte API

  /**
   * Writes `bytes` at `offset`, region by region in ascending order, each through
   * the same steps as writeRegion; a region covered in part is read, merged and
   * written whole (so its whole old content is preserved first). Each region is
   * atomic as docs/protocol.md section 5 says; the call as a whole is not: a crash may leave
   * a prefix of its regions written. A zero-length write does nothing.
   */
  write(offset: number, bytes: Uint8Array): void {
    const where = this.where('write', `offset ${offset}, length ${bytes instanceof Uint8Array ? bytes.length : '?'}`);
    this.checkUsable(where);
    this.checkWritable(where);
    if (!(bytes instanceof Uint8Array)) throw new CowmapError('E_BAD_REQUEST', `${where}: data must be bytes`);
    this.checkByteRange(where, offset, bytes.length);
    if (bytes.length === 0) return;
    this.perform(where, () => {
      const first = Math.floor(offset / this.regionSize);
      const last = Math.floor((offset + bytes.length - 1) / this.regionSize);
      for (let region = first; region <= last; region++) {
        const regionStart = region * this.regionSize;
        const start = Math.max(offset, regionStart);
        const end = Math.min(offset + bytes.length, regionStart + this.regionSize);
        const part = bytes.subarray(start - offset, end - offset);
        let data = part;
        if (part.length < this.regionSize) {
          data = this.primary.readRegion(region).slice();
          data.set(part, start - regionStart);
        }
        this.applyWrite(region, data);
      }
    });
  }

  /**
   * The NBD write path (docs/format.md, "The buffered write path"): every write
   * is judged before any I/O, then the writes share their durable steps (group
   * commit). While replicating, each touched region without a COW copy this cycle
   * is preserved, ONE fdatasync of the COW file for all of them; while idle, the
   * clear next bits of the touched regions are set with ONE fdatasync of the map
   * (while replicating they are deferred: the durable COW entries imply them).
   * Only then are the writes' own bytes pwritten into P, in the order given, and
   * NOT synced: when this returns they are in the OS, durable after `flush`. The
   * order keeps docs/protocol.md section 5: P[r] changes only after its COW copy
   * and its next bit are durable, so a crash leaves each region old, new or torn
   * with both there, as a crash inside its write would.
   */
  writeMany(writes: readonly ByteWrite[]): void {
    const where = this.where('writeMany', Array.isArray(writes) ? `${writes.length} write(s)` : '');
    this.checkUsable(where);
    this.checkWritable(where);
    if (!Array.isArray(writes)) throw new CowmapError('E_BAD_REQUEST', `${where}: writes must be an array`);
    for (const write of writes) {
      const each = this.where('writeMany', `offset ${write?.offset}`);
      if (!(write?.bytes instanceof Uint8Array)) throw new CowmapError('E_BAD_REQUEST', `${each}: data must be bytes`);
      this.checkByteRange(each, write.offset, write.bytes.length);
    }
    const touched = regionsTouched(writes, this.regionSize);
    if (touched.length === 0) return;
    this.perform(where, () => {
      if (this.phase === 'replicating') this.preserveRegions(touched.filter((region) => this.needsPreserve(region)));
      this.markNextMany(touched);
      for (const write of writes) {
        if (write.bytes.length > 0) this.primary.file.write(this.primary.baseOffset + write.offset, write.bytes);
      }
      this.primaryUnsynced = true;
    });
  }

  /** `length` bytes at `offset` of P, or of S with `volume: 'secondary'`. */
  read(offset: number, length: number, volume: VolumeName = 'primary'): Uint8Array {
    const where = this.where('read', `offset ${offset}, length ${length}`);
    this.checkUsable(where);
    this.checkVolumeName(where, volume);
    this.checkByteRange(where, offset, length);
    if (length > readBytesMax) {
      throw new CowmapError('E_SIZE', `${where}: a read returns at most ${readBytesMax} bytes (1 GiB); read in parts`);
    }
    return this.perform(where, () => {
      if (length === 0) return new Uint8Array(0);
      // P is a plain image: its bytes are read as they are (a 4 KiB NBD READ reads
      // 4 KiB, not its whole region). S is read by whole regions, each checked
      // against its digest-table entry.
      if (volume === 'primary') {
        const bytes = this.primary.file.read(this.primary.baseOffset + offset, length);
        assert(bytes.length === length, `short read of ${length} bytes at ${offset} in ${this.primary.file.path}`);
        return bytes;
      }
      const result = new Uint8Array(length);
      const first = Math.floor(offset / this.regionSize);
      const last = Math.floor((offset + length - 1) / this.regionSize);
      for (let region = first; region <= last; region++) {
        const content = this.readSecondary(region);
        const regionStart = region * this.regionSize;
        const start = Math.max(offset, regionStart);
        const end = Math.min(offset + length, regionStart + this.regionSize);
        result.set(content.subarray(start - regionStart, end - regionStart), start - offset);
      }
      return result;
    });
  }
}

/** The regions a list of byte writes touches, ascending, each once. */
function regionsTouched(writes: readonly ByteWrite[], regionSize: number): number[] {
  const touched = new Set<number>();
  for (const { offset, bytes } of writes) {
    if (bytes.length === 0) continue;
    const last = Math.floor((offset + bytes.length - 1) / regionSize);
    for (let region = Math.floor(offset / regionSize); region <= last; region++) touched.add(region);
  }
  return [...touched].sort((a, b) => a - b);
}
