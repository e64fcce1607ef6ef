// The secondary volume S behind an interface, so that a network replica can stand
// in for the file one later. The volume asks of a replica only this: whole-region
// reads and writes, writes durable before the call returns (a transfer is
// acknowledged only once the secondary region is durable, docs/protocol.md section 5; a
// batch of them shares one sync), and a check at
// open that the replica belongs to this volume.
//
// FileReplica keeps S in a directory of its own: DIR2/replica, a 512-byte header
// naming the volume (its id and geometry), DIR2/image, regions * regionSize bytes,
// and DIR2/digests, the CRC-32 of each region as last sent (impl/digestTable.ts),
// so that rot in S is found instead of read back. Byte layout: docs/format.md,
// "The secondary".

import { assert } from './assert.ts';
import { crc32 } from './checksum.ts';
import { DigestTable, digestTableSize } from './digestTable.ts';
import { CowmapError } from './errors.ts';
import { sectorSize, volumeSize, type Geometry } from './geometry.ts';
import { fileNames, parentDir, volumePath } from './layout.ts';
import { volumeIdSize } from './metadata.ts';
import { RegionFile } from './regionFile.ts';
import type { FileHandle, Storage } from './storage.ts';
import type { LinkStatus } from './remote/linkStatus.ts';
import { closeQuietly, removeQuietly } from './createdFiles.ts';

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
  /**
   * Tells the replica which regions are pending (replicating, in C, not sent since
   * the open): their entries may be stale, and a page that fails its CRC while it
   * holds one was torn by a crash, not rot (impl/digestTable.ts). The volume sets
   * it once, at open, before recovery reads any entry. Default: none pending.
   */
  setPending(pending: (region: number) => boolean): void;
  /** Every page of the digest table that fails its CRC-32 and holds no pending region: rot (scrub). */
  digestPageProblems(): DigestPageProblem[];
  /**
   * scrub --repair: rewrites each given page with entries recomputed from the bytes
   * of S now (the regions are resent by the next cycle anyway), durable on return.
   */
  rewriteDigestPages(pages: readonly number[]): void;
  /**
   * The volume swapped, or opened in the middle of a cycle: `cycle` is running from
   * now on (docs/protocol.md section 10). No I/O: a remote replica sends its start
   * signal before the cycle's first region; a directory replica does nothing.
   */
  cycleRunning(cycle: number): void;
  /**
   * Completion's first step, before the volume's durable update: every transfer of
   * `cycle` is confirmed by the far side and the cycle's end is signalled (a remote
   * replica: the complete control block, then a FLUSH). ReplicaLinkError when the
   * far side did not confirm: the cycle stays running. A directory replica: nothing.
   */
  confirmCycle(cycle: number): void;
  /**
   * S[region] as the secondary's consistent image holds it: P@swap of the last
   * completed cycle (INV-DR, docs/protocol.md section 10). Only a replica that keeps
   * a consistent image has it; the others are undefined here.
   */
  readonly readConsistentRegion?: (region: number) => Uint8Array;
  /** Where the link to a remote replica stands (`cowmap status`, serve.status); undefined for a local one. */
  readonly linkStatus?: () => LinkStatus;
  /**
   * Connects if not connected (bounded by the link's connect timeout), reads the far
   * side's control block, writes nothing, and returns the link's status (`cowmap
   * status` of a volume nobody serves). Undefined for a local replica.
   */
  readonly probeLink?: () => LinkStatus;
  close(): void;
}

/** What a replica must match: the volume's id (from its metadata) and geometry. */
export interface ReplicaIdentity extends Geometry {
  readonly volumeId: Uint8Array;
}

/** 2: the digest table DIR2/digests (docs/format.md). A version 1 secondary has none. */
export const replicaFormatVersion = 2;
/** The digest table's file name in DIR2 (impl/digestTable.ts). */
export const digestsFileName = 'digests';
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
  // The CRC before the version: a flipped byte in the version field is rot, not a format.
  if (view.getUint32(headerOffsets.checksum, true) !== crc32(bytes.subarray(0, headerOffsets.checksum)))
    return 'bad checksum';
  const version = view.getUint32(headerOffsets.version, true);
  if (version === 1)
    return (
      `format version 1 (a secondary without ${digestsFileName}, from an older build) is not supported by ` +
      `this build (format version ${replicaFormatVersion})`
    );
  if (version !== replicaFormatVersion) return `unknown format version ${version}`;
  const volumeId = bytes.subarray(headerOffsets.volumeId, headerOffsets.volumeId + volumeIdSize);
  if (!Buffer.from(volumeId).equals(identity.volumeId)) return 'it belongs to another volume';
  const regions = view.getUint32(headerOffsets.regions, true);
  const regionSize = view.getUint32(headerOffsets.regionSize, true);
  if (regions !== identity.regions || regionSize !== identity.regionSize) {
    return `geometry ${regions} x ${regionSize}, the volume has ${identity.regions} x ${identity.regionSize}`;
  }
  return null;
}

/** The options of `FileReplica.open`. */
export interface ReplicaOpenOptions {
  /** O_RDONLY files, nothing synced or written (a read-only open of the volume). */
  readOnly?: boolean;
}

export class FileReplica implements Replica {
  readonly dir: string;
  private readonly image: RegionFile;
  private readonly digests: DigestTable;

  private constructor(dir: string, image: RegionFile, digests: DigestTable) {
    this.dir = dir;
    this.image = image;
    this.digests = digests;
  }

  get regions(): number {
    return this.image.regions;
  }

  get regionSize(): number {
    return this.image.regionSize;
  }

  get imagePath(): string {
    return this.image.file.path;
  }

  get digestsPath(): string {
    return this.digests.file.path;
  }

  /**
   * Makes an all-zero secondary in `dir` (made if missing): the image, the digest
   * table (all-zero pages: every entry is the zero region's CRC) and the header,
   * each created (never an existing file: E_EXISTS) at full size and synced, then
   * the directory: the volume's metadata, written after this returns, is what makes
   * the volume exist. On failure it removes exactly what it created.
   */
  static create(storage: Storage, dir: string, identity: ReplicaIdentity): FileReplica {
    const paths = replicaPaths(dir);
    const createdPaths: string[] = [];
    const handles: FileHandle[] = [];
    let madeDir = false;
    const createFile = (path: string, size: number): FileHandle => {
      if (storage.exists(path))
        throw new CowmapError('E_EXISTS', `create: ${path} exists; the secondary's directory must hold nothing`);
      const file = storage.open(path, { create: true });
      createdPaths.push(path);
      handles.push(file);
      file.truncate(size);
      return file;
    };
    try {
      if (!storage.exists(dir)) {
        storage.mkdir(dir);
        madeDir = true;
        storage.syncDir(parentDir(dir));
      }
      const image = createFile(paths.image, volumeSize(identity));
      image.sync();
      const digestsFile = createFile(paths.digests, digestTableSize(identity.regions));
      digestsFile.sync();
      const header = createFile(paths.header, 0);
      header.write(0, encodeReplicaHeader(identity));
      header.sync();
      header.close();
      handles.pop();
      storage.syncDir(dir);
      const digests = DigestTable.load(digestsFile, identity.regions, identity.regionSize);
      return new FileReplica(dir, new RegionFile(image, identity.regions, identity.regionSize), digests);
    } catch (error) {
      for (const file of handles) closeQuietly(file);
      removeQuietly(storage, dir, createdPaths, madeDir);
      throw error;
    }
  }

  /**
   * Opens the secondary in `dir`; E_CORRUPT when it is missing, foreign, of another
   * format version or the wrong size. Every file is synced before it is read
   * (unless read-only), as every file of the volume at open.
   */
  static open(storage: Storage, dir: string, identity: ReplicaIdentity, options: ReplicaOpenOptions = {}): FileReplica {
    const paths = replicaPaths(dir);
    const readOnly = options.readOnly === true;
    if (!storage.exists(paths.header) || !storage.exists(paths.image)) {
      throw new CowmapError('E_CORRUPT', `open: the secondary in ${dir} is missing`);
    }
    // Synced before they are read, as every file of the volume at open (see
    // impl/openVolume.ts): nothing recovery reads is left to the page cache.
    const header = storage.open(paths.header, { create: false, readOnly });
    let problem: string | null;
    try {
      if (!readOnly) header.sync();
      problem =
        header.size() !== sectorSize
          ? `header is ${header.size()} bytes`
          : headerProblem(header.read(0, sectorSize), identity);
    } finally {
      header.close();
    }
    if (problem?.startsWith('format version')) throw new CowmapError('E_CORRUPT', `open: ${paths.header}: ${problem}`);
    if (problem !== null)
      throw new CowmapError('E_CORRUPT', `open: the secondary in ${dir} is not this volume's: ${problem}`);
    // After the header: a version 1 secondary has no table, and says so above.
    if (!storage.exists(paths.digests)) throw new CowmapError('E_CORRUPT', `open: ${paths.digests} is missing`);

    const handles: FileHandle[] = [];
    try {
      const image = storage.open(paths.image, { create: false, readOnly });
      handles.push(image);
      if (!readOnly) image.sync();
      const expected = volumeSize(identity);
      const actual = image.size();
      if (actual !== expected)
        throw new CowmapError('E_CORRUPT', `open: ${paths.image} is ${actual} bytes, not ${expected}`);
      const digestsFile = storage.open(paths.digests, { create: false, readOnly });
      handles.push(digestsFile);
      if (!readOnly) digestsFile.sync();
      const digests = DigestTable.load(digestsFile, identity.regions, identity.regionSize);
      return new FileReplica(dir, new RegionFile(image, identity.regions, identity.regionSize), digests);
    } catch (error) {
      for (const file of handles) closeQuietly(file);
      throw error;
    }
  }

  /**
   * One pwrite per region, then the touched pages of the digest table (one write
   * per run of adjacent pages), then ONE fdatasync of the image and ONE of the
   * table for the lot (none for an empty list). The CRC of each region is taken
   * from the bytes written. A touched page that is rot: E_CORRUPT before any write.
   * Crash consistency: impl/digestTable.ts (every region of the batch is pending
   * until this returns, so a stale or torn entry of it is never checked).
   */
  writeRegions(regions: readonly number[], contentOf: (region: number) => Uint8Array): void {
    if (regions.length === 0) return;
    const pages = this.digests.prepare(regions, `transfer(region ${regions[0]})`);
    const crcs = new Map<number, number>();
    for (const region of regions) {
      const data = contentOf(region);
      this.image.writeRegion(region, data);
      crcs.set(region, crc32(data));
    }
    this.digests.update(pages, crcs);
    // The image first: once the table is durable, a non-pending entry is trusted.
    this.image.sync();
    this.digests.sync();
  }

  /** Tells the table which regions are pending (see impl/digestTable.ts); the volume sets it. */
  setPending(pending: (region: number) => boolean): void {
    this.digests.pending = pending;
  }

  readRegion(region: number, options: ReadRegionOptions = {}): Uint8Array {
    const bytes = this.image.readRegion(region);
    if (options.verify === true && crc32(bytes) !== this.digests.entry(region, `read(region ${region})`)) {
      throw new CowmapError(
        'E_CORRUPT',
        `read(region ${region}): ${this.imagePath} offset ${this.image.offsetOf(region)} region ${region}: ` +
          `the region does not match its digest in ${this.digestsPath}`,
      );
    }
    return bytes;
  }

  digestOf(region: number): number {
    return this.digests.entry(region);
  }

  verifyRegion(region: number): boolean {
    return crc32(this.image.readRegion(region)) === this.digests.entry(region);
  }

  digestPageProblems(): DigestPageProblem[] {
    return this.digests.rottenPages();
  }

  /** Entries recomputed from S as it is now, written and synced (scrub --repair). */
  rewriteDigestPages(pages: readonly number[]): void {
    if (pages.length === 0) return;
    this.digests.rewritePages(pages, (region) => crc32(this.image.readRegion(region)));
    this.digests.sync();
  }

  /** A directory replica has no signals: every write is durable before writeRegions returns. */
  cycleRunning(_cycle: number): void {}

  confirmCycle(_cycle: number): void {}

  close(): void {
    closeQuietly(this.digests.file);
    this.image.file.close();
  }
}

function replicaPaths(dir: string): { header: string; image: string; digests: string } {
  return {
    header: volumePath(dir, fileNames.replicaHeader),
    image: volumePath(dir, fileNames.replicaImage),
    digests: volumePath(dir, digestsFileName),
  };
}
