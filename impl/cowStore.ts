// The COW snapshot W on disk (DIR/cow): an index of one 64-byte entry per region,
// then one data slot of regionSize bytes per region. An entry says "slot r holds the
// content region r had when cycle N began" with N and the slot's SHA-256; it counts
// only while the metadata's cycle number is N and the phase is replicating. So the
// swap empties W in O(1) by bumping the cycle number, and nothing here is ever
// erased. Byte layout: docs/format.md, "DIR/cow".

import { assert } from './assert.ts';
import { Bitmap } from './bitmap.ts';
import { bytesEqual, crc32, sha256, sha256Bytes } from './checksum.ts';
import { CowmapError } from './errors.ts';
import { roundUp, sectorSize } from './geometry.ts';
import { RegionFile } from './regionFile.ts';
import type { FileHandle } from './storage.ts';

export const entrySize = 64;
const entryOffsets = { cycle: 0, region: 8, digest: 16, checksum: 60 } as const;
/** Entries read per index read at recovery: bounds the memory of the scan. */
const entriesPerReadMax = 1024;

/** The index area, rounded up to whole sectors so that every data slot is sector-aligned. */
export function cowIndexSize(regions: number): number {
  return roundUp(regions * entrySize, sectorSize);
}

export function cowFileSize(regions: number, regionSize: number): number {
  return cowIndexSize(regions) + regions * regionSize;
}

export function encodeEntry(region: number, cycle: number, digest: Uint8Array): Uint8Array {
  assert(digest.length === sha256Bytes, 'digest size');
  const bytes = new Uint8Array(entrySize);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(entryOffsets.cycle, BigInt(cycle), true);
  view.setUint32(entryOffsets.region, region, true);
  bytes.set(digest, entryOffsets.digest);
  view.setUint32(entryOffsets.checksum, crc32(bytes.subarray(0, entryOffsets.checksum)), true);
  return bytes;
}

/** The digest an entry promises for `region` in `cycle`, or null when the entry is not one for them (or is torn). */
function decodeEntry(bytes: Uint8Array, region: number, cycle: number): Uint8Array | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(entryOffsets.checksum, true) !== crc32(bytes.subarray(0, entryOffsets.checksum))) return null;
  if (view.getBigUint64(entryOffsets.cycle, true) !== BigInt(cycle)) return null;
  if (view.getUint32(entryOffsets.region, true) !== region) return null;
  return bytes.slice(entryOffsets.digest, entryOffsets.digest + sha256Bytes);
}

export class CowStore {
  readonly file: FileHandle;
  readonly data: RegionFile;
  /** Which regions hold a preserved copy for the running cycle, and its digest. */
  private readonly digests = new Map<number, Uint8Array>();
  private readonly preserved: Bitmap;

  private constructor(file: FileHandle, regions: number, regionSize: number) {
    this.file = file;
    this.data = new RegionFile(file, regions, regionSize, cowIndexSize(regions));
    this.preserved = new Bitmap(regions);
  }

  static load(file: FileHandle, regions: number, regionSize: number): CowStore {
    const expected = cowFileSize(regions, regionSize);
    const actual = file.size();
    if (actual !== expected) throw new CowmapError('E_CORRUPT', `open: ${file.path} is ${actual} bytes, not ${expected}`);
    return new CowStore(file, regions, regionSize);
  }

  get regions(): number {
    return this.data.regions;
  }

  holds(region: number): boolean {
    return this.preserved.has(region);
  }

  preservedRegions(): number[] {
    return this.preserved.regionsSet();
  }

  get preservedCount(): number {
    return this.preserved.count;
  }

  /**
   * Preserves `content` (the region as the cycle found it) durably: the data slot and
   * the index entry are written, then ONE sync covers both (same file). Until that
   * sync returns the entry may be lost, torn or ahead of its data; the digest in it
   * then fails to match and recovery treats W[r] as empty, which is right because
   * the caller overwrites P[r] only after this returns.
   */
  preserve(region: number, content: Uint8Array, cycle: number): void {
    // Preserving a region twice in a cycle is the volume's rule to prevent
    // (ReplicatedVolume.needsPreserve), not this store's: it overwrites the copy.
    const digest = sha256(content);
    this.data.writeRegion(region, content);
    this.file.write(region * entrySize, encodeEntry(region, cycle, digest));
    this.file.sync();
    this.preserved.set(region);
    this.digests.set(region, digest);
  }

  /** The preserved copy of `region`; E_CORRUPT if the slot no longer matches its digest. */
  read(region: number): Uint8Array {
    const digest = this.digests.get(region);
    assert(digest !== undefined && this.preserved.has(region), `read of region ${region}, which is not preserved`);
    const content = this.data.readRegion(region);
    if (!bytesEqual(sha256(content), digest)) {
      throw new CowmapError('E_CORRUPT', `the COW copy of region ${region} in ${this.file.path} does not match its digest`);
    }
    return content;
  }

  /** Empties W in memory; on disk the entries go stale when the metadata's cycle number moves on. */
  forget(): void {
    this.preserved.clearAll();
    this.digests.clear();
  }

  /**
   * Recovery of a running cycle: W[r] holds a copy exactly when entry r names this
   * cycle, its checksum holds and the slot's bytes match its digest. Reads the
   * index in bounded chunks, and the slots of the valid entries.
   */
  loadCycle(cycle: number): void {
    assert(this.preserved.isClear(), 'loadCycle over a loaded store');
    const regions = this.regions;
    for (let first = 0; first < regions; first += entriesPerReadMax) {
      const count = Math.min(entriesPerReadMax, regions - first);
      const chunk = this.file.read(first * entrySize, count * entrySize);
      for (let i = 0; i < count; i++) {
        const region = first + i;
        const digest = decodeEntry(chunk.subarray(i * entrySize, (i + 1) * entrySize), region, cycle);
        if (digest === null) continue;
        if (!bytesEqual(sha256(this.data.readRegion(region)), digest)) continue;
        this.preserved.set(region);
        this.digests.set(region, digest);
      }
    }
  }
}
