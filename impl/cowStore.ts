// The COW snapshot W on disk (DIR/cow): an index of one 64-byte entry per region,
// then one data slot of regionSize bytes per region. An entry says "slot r holds the
// content region r had when cycle N began" with N and the slot's SHA-256; it counts
// only while the metadata's cycle number is N and the phase is replicating. So the
// swap empties W in O(1) by bumping the cycle number, and nothing here is erased
// but by scrub --repair (dropCopy). Each entry also carries the metadata sequence
// in force when it was written: evidence that a newer metadata record existed
// (docs/format.md, "Recovery"). Byte layout: docs/format.md, "DIR/cow".

import { assert } from './assert.ts';
import { Bitmap } from './bitmap.ts';
import { bytesEqual, crc32, isAllZero, sha256, sha256Bytes } from './checksum.ts';
import { CowmapError } from './errors.ts';
import { roundUp, sectorSize } from './geometry.ts';
import { RegionFile } from './regionFile.ts';
import type { ScrubFinding } from './scrubFinding.ts';
import type { FileHandle } from './storage.ts';

export const entrySize = 64;
const entryOffsets = { cycle: 0, region: 8, digest: 16, stamp: 48, reserved: 56, checksum: 60 } as const;
/** Entries read per index read at recovery: bounds the memory of the scan. */
const entriesPerReadMax = 1024;

/** The index area, rounded up to whole sectors so that every data slot is sector-aligned. */
export function cowIndexSize(regions: number): number {
  return roundUp(regions * entrySize, sectorSize);
}

export function cowFileSize(regions: number, regionSize: number): number {
  return cowIndexSize(regions) + regions * regionSize;
}

export function encodeEntry(region: number, cycle: number, digest: Uint8Array, sequence: number): Uint8Array {
  assert(digest.length === sha256Bytes, 'digest size');
  assert(Number.isSafeInteger(sequence) && sequence >= 1, `entry stamp ${sequence}`);
  const bytes = new Uint8Array(entrySize);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(entryOffsets.cycle, BigInt(cycle), true);
  view.setUint32(entryOffsets.region, region, true);
  bytes.set(digest, entryOffsets.digest);
  view.setBigUint64(entryOffsets.stamp, BigInt(sequence), true);
  view.setUint32(entryOffsets.checksum, crc32(bytes.subarray(0, entryOffsets.checksum)), true);
  return bytes;
}

type DecodedEntry =
  | { kind: 'empty' }
  /** Fails its CRC and is not all zeros: torn by a crash during its preserve, or rot. */
  | { kind: 'damaged'; fields: EntryFields }
  | ({ kind: 'valid' } & EntryFields);

/** The fields of an entry as stored (unchecked for a damaged one). */
interface EntryFields {
  cycle: number;
  region: number;
  digest: Uint8Array;
  stamp: number;
}

function decodeEntry(bytes: Uint8Array): DecodedEntry {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: EntryFields = {
    cycle: Number(view.getBigUint64(entryOffsets.cycle, true)),
    region: view.getUint32(entryOffsets.region, true),
    digest: bytes.slice(entryOffsets.digest, entryOffsets.digest + sha256Bytes),
    stamp: Number(view.getBigUint64(entryOffsets.stamp, true)),
  };
  if (view.getUint32(entryOffsets.checksum, true) !== crc32(bytes.subarray(0, entryOffsets.checksum))) {
    return isAllZero(bytes) ? { kind: 'empty' } : { kind: 'damaged', fields };
  }
  return { kind: 'valid', ...fields };
}

/** How many bytes of two digests differ. */
function bytesDiffering(a: Uint8Array, b: Uint8Array): number {
  let count = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) count++;
  return count;
}

/** What loadCycle found besides the copies it loaded. */
export interface CycleScan {
  /** Regions whose entry fails its CRC and is not all zeros: recovery checks they are covered or unchanged. */
  damagedEntries: number[];
  /** The greatest stamp of a valid entry (any cycle), for the evidence rule; 0 when none. */
  stampMax: number;
}

export class CowStore {
  readonly file: FileHandle;
  readonly data: RegionFile;
  /** Which regions hold a preserved copy for the running cycle, and its digest. */
  private readonly digests = new Map<number, Uint8Array>();
  private readonly preserved: Bitmap;
  private sequenceOf: (() => number) | null = null;

  private constructor(file: FileHandle, regions: number, regionSize: number) {
    this.file = file;
    this.data = new RegionFile(file, regions, regionSize, cowIndexSize(regions));
    this.preserved = new Bitmap(regions);
  }

  static load(file: FileHandle, regions: number, regionSize: number): CowStore {
    const expected = cowFileSize(regions, regionSize);
    const actual = file.size();
    if (actual !== expected)
      throw new CowmapError('E_CORRUPT', `open: ${file.path} is ${actual} bytes, not ${expected}`);
    return new CowStore(file, regions, regionSize);
  }

  /** Where the metadata sequence that stamps every entry written comes from (the volume's metadata). */
  stampWith(sequenceOf: () => number): void {
    this.sequenceOf = sequenceOf;
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
    assert(this.sequenceOf !== null, `${this.file.path}: a preserve before the volume gave its metadata sequence`);
    const sequence = this.sequenceOf();
    // Preserving a region twice in a cycle is the volume's rule to prevent
    // (ReplicatedVolume.needsPreserve), not this store's: it overwrites the copy.
    const digest = sha256(content);
    this.data.writeRegion(region, content);
    this.file.write(region * entrySize, encodeEntry(region, cycle, digest, sequence));
    this.file.sync();
    this.preserved.set(region);
    this.digests.set(region, digest);
  }

  /**
   * preserve() of each region with ONE sync for the lot (the NBD path's group
   * commit): every slot and entry written, then the sync; until it returns each
   * entry is lost, torn or whole, judged by its digest as for one preserve.
   */
  preserveMany(regions: readonly number[], contentOf: (region: number) => Uint8Array, cycle: number): void {
    if (regions.length === 0) return;
    assert(this.sequenceOf !== null, `${this.file.path}: a preserve before the volume gave its metadata sequence`);
    const sequence = this.sequenceOf();
    const digests: Uint8Array[] = [];
    for (const region of regions) {
      const content = contentOf(region);
      const digest = sha256(content);
      this.data.writeRegion(region, content);
      this.file.write(region * entrySize, encodeEntry(region, cycle, digest, sequence));
      digests.push(digest);
    }
    this.file.sync();
    regions.forEach((region, index) => {
      this.preserved.set(region);
      this.digests.set(region, digests[index]!);
    });
  }

  /** The preserved copy of `region`; E_CORRUPT if the slot no longer matches its digest. */
  read(region: number): Uint8Array {
    const digest = this.digests.get(region);
    assert(digest !== undefined && this.preserved.has(region), `read of region ${region}, which is not preserved`);
    const content = this.data.readRegion(region);
    if (!bytesEqual(sha256(content), digest)) {
      throw new CowmapError(
        'E_CORRUPT',
        `the COW copy of region ${region} in ${this.file.path} does not match its digest`,
      );
    }
    return content;
  }

  /** Empties W in memory; on disk the entries go stale when the metadata's cycle number moves on. */
  forget(): void {
    this.preserved.clearAll();
    this.digests.clear();
  }

  /**
   * Recovery of a running cycle (docs/format.md, "Recovery"): W[r] holds a copy
   * exactly when entry r is valid, names this cycle and region r, and the slot's
   * bytes match its digest. A valid entry whose slot fails its digest is a torn
   * preserve only when `tornPreserve(region, digest)` says so (the primary still
   * holds those bytes: it is overwritten only after the preserve's sync); then W[r]
   * is empty. Otherwise the copy rotted after P moved on: E_CORRUPT, never dropped
   * silently. Reads the index in bounded chunks, and the slots of the valid entries.
   */
  loadCycle(
    cycle: number,
    sequence: number,
    tornPreserve: (region: number, digest: Uint8Array) => boolean,
    rotted: ((region: number, offset: number, problem: string) => void) | null = null,
  ): CycleScan {
    assert(this.preserved.isClear(), 'loadCycle over a loaded store');
    const refuse = (region: number, offset: number, problem: string): void => {
      // scrub --repair: the copy counts as empty, and the caller drops it durably.
      if (rotted !== null) {
        rotted(region, offset, problem);
        return;
      }
      throw new CowmapError('E_CORRUPT', `open: ${this.file.path} offset ${offset} region ${region}: ${problem}`);
    };
    return this.scanIndex(
      (region, entry) => {
        if (entry.cycle !== cycle || entry.region !== region) return;
        if (bytesEqual(sha256(this.data.readRegion(region)), entry.digest)) {
          this.preserved.set(region);
          this.digests.set(region, entry.digest);
          return;
        }
        if (tornPreserve(region, entry.digest)) return;
        refuse(
          region,
          this.data.offsetOf(region),
          `the COW copy of cycle ${cycle} fails its SHA-256 and the primary no longer holds it (not a torn preserve)`,
        );
      },
      (region, fields) => {
        // A damaged entry of the running cycle (its cycle or its stamp says so:
        // one flipped byte cannot change both) whose slot still hashes to the digest
        // it carries, give or take one byte: the preserve was complete, so the
        // entry was durable before the primary could move on. If the primary no
        // longer holds those bytes, the entry rotted after P was overwritten, and
        // counting W[r] empty would send the new data as the point in time.
        if (fields.cycle !== cycle && fields.stamp !== sequence) return;
        const slotDigest = sha256(this.data.readRegion(region));
        if (bytesDiffering(slotDigest, fields.digest) > 1 || tornPreserve(region, slotDigest)) return;
        refuse(
          region,
          region * entrySize,
          `the COW index entry of cycle ${cycle} fails its CRC-32 while its slot holds a complete copy that the ` +
            `primary no longer holds (rot, not a torn preserve)`,
        );
      },
    );
  }

  /** The greatest stamp of a valid entry, and the damaged entries, without loading any copy (the evidence rule while idle). */
  scanStamps(): CycleScan {
    return this.scanIndex(() => {});
  }

  /** Calls `visit` for each valid entry, in region order, reading the index in bounded chunks. */
  private scanIndex(
    visit: (region: number, entry: DecodedEntry & { kind: 'valid' }) => void,
    visitDamaged: (region: number, fields: EntryFields) => void = () => {},
  ): CycleScan {
    const regions = this.regions;
    const scan: CycleScan = { damagedEntries: [], stampMax: 0 };
    for (let first = 0; first < regions; first += entriesPerReadMax) {
      const count = Math.min(entriesPerReadMax, regions - first);
      const chunk = this.file.read(first * entrySize, count * entrySize);
      for (let i = 0; i < count; i++) {
        const region = first + i;
        const entry = decodeEntry(chunk.subarray(i * entrySize, (i + 1) * entrySize));
        if (entry.kind === 'damaged') {
          scan.damagedEntries.push(region);
          visitDamaged(region, entry.fields);
        }
        if (entry.kind !== 'valid') continue;
        scan.stampMax = Math.max(scan.stampMax, entry.stamp);
        visit(region, entry);
      }
    }
    return scan;
  }

  /**
   * Reads the index again (docs/format.md, "Scrub"): every entry that fails its
   * CRC and is not all zeros (in any phase: a torn or rotted entry is cleaned up by
   * --repair), and while replicating every slot of a valid entry of the running
   * cycle that fails its SHA-256. The slots of older cycles are never used again
   * and are not read.
   */
  scrub(cycle: number | null): ScrubFinding[] {
    const findings: ScrubFinding[] = [];
    const scan = this.scanIndex((region, entry) => {
      if (cycle === null || entry.cycle !== cycle || entry.region !== region) return;
      if (bytesEqual(sha256(this.data.readRegion(region)), entry.digest)) return;
      findings.push({
        file: this.file.path,
        offset: this.data.offsetOf(region),
        region,
        problem: `the COW copy of region ${region} fails its SHA-256`,
        repaired: false,
      });
    });
    for (const region of scan.damagedEntries) {
      findings.push({
        file: this.file.path,
        offset: region * entrySize,
        region,
        problem: `the COW index entry of region ${region} fails its CRC-32`,
        repaired: false,
      });
    }
    return findings.sort((a, b) => (a.region ?? 0) - (b.region ?? 0));
  }

  /**
   * scrub --repair: W[region] := empty durably (the entry zeroed, then synced), so
   * that the region goes out with P's data this cycle. The caller has marked the
   * region in X durably first: its next bit may have been implied by the entry only.
   */
  dropCopy(region: number): void {
    this.file.write(region * entrySize, new Uint8Array(entrySize));
    this.file.sync();
    this.preserved.clear(region);
    this.digests.delete(region);
  }
}
