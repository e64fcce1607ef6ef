// The secondary volume S behind an interface, so that a network replica can stand
// in for the file one later. The volume asks of a replica only this: whole-region
// reads and writes, writes durable before the call returns (a transfer is
// acknowledged only once the secondary region is durable, docs/protocol.md section 5; a
// batch of them shares one sync), and a check at
// open that the replica belongs to this volume.
//
// FileReplica keeps S in a directory of its own: DIR2/replica, a 512-byte header
// naming the volume (its id and geometry), and DIR2/image, regions * regionSize
// bytes. Byte layout: docs/format.md, "The secondary".

import { assert } from './assert.ts';
import { crc32 } from './checksum.ts';
import { CowmapError } from './errors.ts';
import { sectorSize, volumeSize, type Geometry } from './geometry.ts';
import { fileNames, parentDir, volumePath } from './layout.ts';
import { volumeIdSize } from './metadata.ts';
import { RegionFile } from './regionFile.ts';
import type { Storage } from './storage.ts';

/** How a read of S is checked. */
export interface ReadRegionOptions {
  /**
   * Check crc32 of the bytes read against the digest table's entry for the region:
   * E_CORRUPT naming DIR2/image, the byte offset and the region on a mismatch. Only
   * for a region whose entry is known to be current: not for a region of C that was
   * not sent since the open while replicating (its entry may be stale, see
   * docs/format.md, "DIR2/digests"). Default false.
   */
  verify?: boolean;
}

/** A page of the digest table that fails its CRC-32 (scrub reports it). */
export interface DigestPageProblem {
  /** The page's index in DIR2/digests. */
  page: number;
  /** Its byte offset in DIR2/digests. */
  offset: number;
  /** The regions whose entries it holds: [firstRegion, firstRegion + regionCount). */
  firstRegion: number;
  regionCount: number;
}

export interface Replica {
  readonly regions: number;
  readonly regionSize: number;
  /** DIR2/image and DIR2/digests as the replica opened them: the files findings name. */
  readonly imagePath: string;
  readonly digestsPath: string;
  /**
   * S[r] := contentOf(r) for each region, in order; all of them durable when this
   * returns. Until then any of them may be old, new or torn. contentOf is called
   * once per region, just before its write, so that one region is in memory at a time.
   */
  writeRegions(regions: readonly number[], contentOf: (region: number) => Uint8Array): void;
  readRegion(region: number, options?: ReadRegionOptions): Uint8Array;
  /**
   * The CRC-32 the digest table holds for S[region] as last sent (crc32 of a zero
   * region when never sent). E_CORRUPT naming DIR2/digests, the page and the region
   * when the entry's page fails its CRC.
   */
  digestOf(region: number): number;
  /** crc32(S[region]) equals digestOf(region); E_CORRUPT only when the page fails its CRC. */
  verifyRegion(region: number): boolean;
  /** Every page of the digest table that fails its CRC-32, in order (scrub). */
  digestPageProblems(): DigestPageProblem[];
  /**
   * scrub --repair: rewrites each given page with entries recomputed from the bytes
   * of S now (the regions are resent by the next cycle anyway), durable on return.
   */
  rewriteDigestPages(pages: readonly number[]): void;
  close(): void;
}

/** What a replica must match: the volume's id (from its metadata) and geometry. */
export interface ReplicaIdentity extends Geometry {
  readonly volumeId: Uint8Array;
}

export const replicaFormatVersion = 1;
const magic = new TextEncoder().encode('cowmapRP');
const headerOffsets = { magic: 0, version: 8, volumeId: 16, regions: 32, regionSize: 36, checksum: 508 } as const;

export function encodeReplicaHeader(identity: ReplicaIdentity): Uint8Array {
  assert(identity.volumeId.length === volumeIdSize, 'volume id size');
  const bytes = new Uint8Array(sectorSize);
  const view = new DataView(bytes.buffer);
  bytes.set(magic, headerOffsets.magic);
  view.setUint32(headerOffsets.version, replicaFormatVersion, true);
  bytes.set(identity.volumeId, headerOffsets.volumeId);
  view.setUint32(headerOffsets.regions, identity.regions, true);
  view.setUint32(headerOffsets.regionSize, identity.regionSize, true);
  view.setUint32(headerOffsets.checksum, crc32(bytes.subarray(0, headerOffsets.checksum)), true);
  return bytes;
}

/** Why a header is not this volume's replica, or null when it is. */
function headerProblem(bytes: Uint8Array, identity: ReplicaIdentity): string | null {
  if (bytes.length !== sectorSize) return `header is ${bytes.length} bytes, not ${sectorSize}`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < magic.length; i++) if (bytes[headerOffsets.magic + i] !== magic[i]) return 'bad magic';
  const version = view.getUint32(headerOffsets.version, true);
  if (version !== replicaFormatVersion) return `unknown format version ${version}`;
  if (view.getUint32(headerOffsets.checksum, true) !== crc32(bytes.subarray(0, headerOffsets.checksum))) return 'bad checksum';
  const volumeId = bytes.subarray(headerOffsets.volumeId, headerOffsets.volumeId + volumeIdSize);
  if (!Buffer.from(volumeId).equals(identity.volumeId)) return 'it belongs to another volume';
  const regions = view.getUint32(headerOffsets.regions, true);
  const regionSize = view.getUint32(headerOffsets.regionSize, true);
  if (regions !== identity.regions || regionSize !== identity.regionSize) {
    return `geometry ${regions} x ${regionSize}, the volume has ${identity.regions} x ${identity.regionSize}`;
  }
  return null;
}

export class FileReplica implements Replica {
  readonly dir: string;
  private readonly image: RegionFile;

  private constructor(dir: string, image: RegionFile) {
    this.dir = dir;
    this.image = image;
  }

  get regions(): number {
    return this.image.regions;
  }

  get regionSize(): number {
    return this.image.regionSize;
  }

  /**
   * Makes an all-zero secondary in `dir` (created if missing), replacing what a
   * half-finished create left there. Every file is synced, then the directory: the
   * volume's metadata, written after this returns, is what makes the volume exist.
   */
  static create(storage: Storage, dir: string, identity: ReplicaIdentity): FileReplica {
    if (!storage.exists(dir)) {
      storage.mkdir(dir);
      storage.syncDir(parentDir(dir));
    }
    const imagePath = volumePath(dir, fileNames.replicaImage);
    const headerPath = volumePath(dir, fileNames.replicaHeader);
    for (const path of [imagePath, headerPath]) if (storage.exists(path)) storage.unlink(path);

    const image = storage.open(imagePath, { create: true });
    try {
      image.truncate(volumeSize(identity));
      image.sync();
      const header = storage.open(headerPath, { create: true });
      try {
        header.write(0, encodeReplicaHeader(identity));
        header.sync();
      } finally {
        header.close();
      }
      storage.syncDir(dir);
    } catch (error) {
      image.close();
      throw error;
    }
    return new FileReplica(dir, new RegionFile(image, identity.regions, identity.regionSize));
  }

  /** Opens the secondary in `dir`; E_CORRUPT when it is missing, foreign or the wrong size. */
  static open(storage: Storage, dir: string, identity: ReplicaIdentity): FileReplica {
    const headerPath = volumePath(dir, fileNames.replicaHeader);
    const imagePath = volumePath(dir, fileNames.replicaImage);
    if (!storage.exists(headerPath) || !storage.exists(imagePath)) {
      throw new CowmapError('E_CORRUPT', `open: the secondary in ${dir} is missing`);
    }
    // Synced before they are read, as every file of the volume at open (see
    // ReplicatedVolume.open): nothing recovery reads is left to the page cache.
    const header = storage.open(headerPath, { create: false });
    let problem: string | null;
    try {
      header.sync();
      problem = header.size() !== sectorSize ? `header is ${header.size()} bytes` : headerProblem(header.read(0, sectorSize), identity);
    } finally {
      header.close();
    }
    if (problem !== null) throw new CowmapError('E_CORRUPT', `open: the secondary in ${dir} is not this volume's: ${problem}`);

    const image = storage.open(imagePath, { create: false });
    try {
      image.sync();
      const expected = volumeSize(identity);
      const actual = image.size();
      if (actual !== expected) throw new CowmapError('E_CORRUPT', `open: ${imagePath} is ${actual} bytes, not ${expected}`);
    } catch (error) {
      image.close();
      throw error;
    }
    return new FileReplica(dir, new RegionFile(image, identity.regions, identity.regionSize));
  }

  /** One pwrite per region, then ONE fdatasync for the lot (none for an empty list). */
  writeRegions(regions: readonly number[], contentOf: (region: number) => Uint8Array): void {
    if (regions.length === 0) return;
    for (const region of regions) this.image.writeRegion(region, contentOf(region));
    this.image.sync();
  }

  get imagePath(): string {
    return this.image.file.path;
  }

  get digestsPath(): string {
    return volumePath(this.dir, 'digests');
  }

  // Placeholders until the digest table (impl/digestTable.ts) lands: the interface
  // is committed first so that the volume and scrub can code against it.
  readRegion(region: number, _options: ReadRegionOptions = {}): Uint8Array {
    return this.image.readRegion(region);
  }

  digestOf(region: number): number {
    return crc32(this.image.readRegion(region));
  }

  verifyRegion(region: number): boolean {
    return crc32(this.image.readRegion(region)) === this.digestOf(region);
  }

  digestPageProblems(): DigestPageProblem[] {
    return [];
  }

  rewriteDigestPages(_pages: readonly number[]): void {}

  close(): void {
    this.image.file.close();
  }
}
