// The state and the checks every layer of the reference volume shares: its files,
// its volatile state, the judging of arguments (docs/protocol.md section 2: a
// rejected call throws before any I/O) and `perform`, which runs the I/O of an
// accepted call and poisons the handle on any failure ("fsyncgate": after a failed
// fsync only a reopen, which recovers from what is durable, is safe).
// The layers: VolumeCore (this file) <- VolumeSteps (the protocol's steps,
// impl/volumeSteps.ts) <- VolumeBytes (the byte API, impl/volumeBytes.ts) <-
// ReplicatedVolume (lifecycle, queries, the region API, impl/replicatedVolume.ts).

import { assert } from './assert.ts';
import { Bitmap } from './bitmap.ts';
import type { CowStore } from './cowStore.ts';
import { CowmapError, isStorageError, ReplicaLinkError } from './errors.ts';
import { geometryProblem, type Geometry } from './geometry.ts';
import type { MapFile } from './mapFile.ts';
import type { MetadataStore, Phase } from './metadata.ts';
import type { RegionFile } from './regionFile.ts';
import type { Replica } from './replica.ts';
import type { Lock, Storage } from './storage.ts';
import { asVolumeError, closeParts, type VolumeParts } from './volumeParts.ts';

export type { Phase } from './metadata.ts';
export type VolumeName = 'primary' | 'secondary';
/** One write of writeMany: `bytes` at byte `offset` of P. */
export interface ByteWrite {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

export class VolumeCore {
  readonly dir: string;
  readonly regions: number;
  readonly regionSize: number;
  protected readonly storage: Storage;
  protected readonly metadata: MetadataStore;
  protected readonly maps: [MapFile, MapFile];
  protected readonly primary: RegionFile;
  protected readonly cow: CowStore;
  protected readonly replica: Replica;
  /**
   * Opened read-only (OpenOptions.readOnly): recovery happened in memory only, and
   * every call that would write is refused with E_BAD_REQUEST.
   */
  readonly readOnly: boolean;
  /** Volatile: the regions of C sent since the swap or since the last open. */
  protected readonly sent: Bitmap;
  protected readonly lock: Lock;
  /** Why the handle is poisoned, or null while it is usable. */
  protected failure: string | null = null;
  /** writeMany left bytes of P in the OS that no fdatasync has covered yet (flush, startCycle and close sync them). */
  protected primaryUnsynced = false;
  protected closed = false;

  /**
   * Whether open syncs every file of the volume before reading it (docs/format.md,
   * "open"). Always true here: a subclass turns it off only to make the harness's
   * mutant that trusts the page cache.
   */
  protected static readonly syncFilesAtOpen: boolean = true;

  /**
   * The rules that keep a volume whole and its holders apart (docs/protocol.md
   * section 2): create refuses a geometry out of bounds (E_SIZE) and a directory
   * that holds a volume (E_EXISTS); create and open refuse a directory another
   * holder has locked (E_LOCKED). Always on here: a subclass turns one off only to
   * make the harness's mutants that break the adapter protocol's own rules.
   */
  protected static geometryProblem(geometry: Geometry): string | null {
    return geometryProblem(geometry);
  }

  protected static readonly refusesExistingVolume: boolean = true;
  protected static readonly honoursLock: boolean = true;

  /** Internal: use `create` or `open`, which also run recovery. */
  constructor(parts: VolumeParts) {
    const record = parts.metadata.record;
    this.dir = parts.dir;
    this.regions = record.regions;
    this.regionSize = record.regionSize;
    this.storage = parts.storage;
    this.lock = parts.lock;
    this.metadata = parts.metadata;
    this.maps = parts.maps;
    this.primary = parts.primary;
    this.cow = parts.cow;
    this.replica = parts.replica;
    this.readOnly = parts.readOnly === true;
    this.sent = new Bitmap(this.regions);
    // Every map page written carries the metadata sequence in force (the evidence rule).
    for (const map of this.maps) map.stampWith(() => this.metadata.record.sequence);
    this.cow.stampWith(() => this.metadata.record.sequence);
    // The replica checks S and its digest table only where the entry is current.
    this.replica.setPending((region) => this.isPending(region));
    // A cycle a crash interrupted resumes at open: the far side hears it before any region.
    if (this.phase === 'replicating') this.replica.cycleRunning(this.cycle);
    assert(this.replica.regions === this.regions && this.replica.regionSize === this.regionSize, 'replica geometry');
  }

  /**
   * Flushes buffered writes, closes the files and releases the lock. Allowed in any
   * state, poisoned included; idempotent. E_IO when that flush fails: the volume is
   * closed anyway, and reopening recovers from what is durable.
   */
  close(): void {
    if (this.closed) return;
    // A clean close makes the buffered writes durable; a poisoned handle must not
    // sync (after a failed fdatasync a retry can report success over lost data).
    // A sync that fails here poisons the handle and is reported, but the volume is
    // closed all the same: its files and its lock must not outlive the close.
    let flushFailure: { error: unknown } | null = null;
    if (this.primaryUnsynced && this.failure === null && !this.readOnly) {
      try {
        this.flush();
      } catch (error) {
        flushFailure = { error };
      }
    }
    this.closed = true;
    try {
      this.closeFiles();
    } catch (error) {
      if (flushFailure === null) throw error;
    }
    if (flushFailure !== null) throw flushFailure.error;
  }

  protected closeFiles(): void {
    closeParts({
      storage: this.storage,
      dir: this.dir,
      lock: this.lock,
      metadata: this.metadata,
      maps: this.maps,
      primary: this.primary,
      cow: this.cow,
      replica: this.replica,
      readOnly: this.readOnly,
    });
  }
  // ------------------------------------------------------------------ queries

  get phase(): Phase {
    return this.metadata.record.phase;
  }

  /** The number of swaps so far (the running cycle's number while replicating). */
  get cycle(): number {
    return this.metadata.record.cycle;
  }

  /**
   * fdatasync of P when writeMany left bytes unsynced (no I/O otherwise): every
   * write that returned before this call is durable when it returns (NBD FLUSH).
   */
  flush(): void {
    const where = this.where('flush');
    this.checkUsable(where);
    if (!this.primaryUnsynced) return;
    this.perform(where, () => {
      this.primary.sync();
      this.primaryUnsynced = false;
    });
  }

  get sizeBytes(): number {
    return this.regions * this.regionSize;
  }

  protected get currentMap(): MapFile {
    return this.maps[this.metadata.record.currentMap];
  }

  protected get nextMap(): MapFile {
    return this.maps[this.metadata.record.currentMap === 0 ? 1 : 0];
  }

  /**
   * S[region], checked against the secondary's digest table unless the region is
   * pending (docs/format.md, "DIR2/digests"): a mismatch is E_CORRUPT.
   */
  protected readSecondary(region: number): Uint8Array {
    return this.replica.readRegion(region, { verify: !this.isPending(region) });
  }

  /**
   * Replicating, the region is in C and was not sent since the open or the swap:
   * a crash may have left S[region] ahead of its digest-table entry, so neither is
   * checked against the other until the region is sent again.
   */
  protected isPending(region: number): boolean {
    return this.phase === 'replicating' && this.currentMap.has(region) && !this.sent.has(region);
  }

  // ------------------------------------------------------------------ checks

  /** How a message names the call: "transfer(region 2) while idle". */
  protected where(operation: string, subject = ''): string {
    return `${operation}(${subject}) while ${this.phase}`;
  }

  protected checkUsable(where: string): void {
    if (this.closed) throw new CowmapError('E_PHASE', `${where}: the volume is closed`);
    if (this.failure !== null) {
      throw new CowmapError(
        'E_IO',
        `${where}: the handle failed earlier (${this.failure}); reopen the volume to recover`,
      );
    }
  }

  /** E_BAD_REQUEST for a call that would write on a volume opened read-only (docs/format.md, "Read-only open"). */
  protected checkWritable(where: string): void {
    if (this.readOnly) throw new CowmapError('E_BAD_REQUEST', `${where}: the volume is open read-only`);
  }

  protected checkRegion(where: string, region: number): void {
    if (!Number.isInteger(region) || region < 0 || region >= this.regions) {
      throw new CowmapError('E_RANGE', `${where}: region ${region} is outside 0..${this.regions - 1}`);
    }
  }

  protected checkData(where: string, data: Uint8Array): void {
    if (!(data instanceof Uint8Array) || data.length !== this.regionSize) {
      const got = data instanceof Uint8Array ? `${data.length} bytes` : 'no bytes';
      throw new CowmapError('E_SIZE', `${where}: data must be exactly ${this.regionSize} bytes, got ${got}`);
    }
  }

  protected checkVolumeName(where: string, volume: VolumeName): void {
    if (volume !== 'primary' && volume !== 'secondary') {
      throw new CowmapError(
        'E_BAD_REQUEST',
        `${where}: volume must be "primary" or "secondary", got ${String(volume)}`,
      );
    }
  }

  protected checkByteRange(where: string, offset: number, length: number): void {
    const sizeBytes = this.sizeBytes;
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > sizeBytes
    ) {
      throw new CowmapError(
        'E_RANGE',
        `${where}: bytes ${offset}..${offset + length} are outside the volume of ${sizeBytes} bytes`,
      );
    }
  }

  /**
   * Runs the I/O of an accepted call. Whatever it throws poisons the handle (its
   * in-memory state may be ahead of or behind the disk); a storage error becomes
   * E_IO, anything else travels up untouched. Except a ReplicaLinkError: the remote
   * replica throws it before the call changed anything durable here.
   */
  protected perform<T>(where: string, body: () => T): T {
    try {
      return body();
    } catch (error) {
      // The link failed before the primary changed anything durable: retry, no reopen.
      if (error instanceof ReplicaLinkError) throw error;
      this.failure = isStorageError(error) ? `${error.code} in ${where}` : `${errorName(error)} in ${where}`;
      throw asVolumeError(error, where, 'E_IO');
    }
  }
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
