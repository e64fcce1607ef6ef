// The reference implementation of the protocol of docs/protocol.md: a primary volume, two
// change maps, a COW snapshot and a secondary, kept in files through `Storage`.
// The on-disk format and the durable order of every operation: docs/format.md.
//
// The API is synchronous: each call is a fixed sequence of storage calls, so the
// k-th durable I/O call of an operation is the same call on every run.
//
// Each step of the protocol is a small protected method named after it, so that a
// broken variant (a "mutant" of the conformance harness) is one override:
//
//   mutant                                        override
//   no copy-on-write                              preserveRegion (do nothing)
//   copy-on-write only for regions in C           needsPreserve
//   a second write in a cycle re-preserves        needsPreserve
//   the next bit not set during a cycle           markNext
//   a swap that keeps the next map                swapMaps
//   a transfer that sends P instead of the view   snapshotView
//   completion before every region is sent        isDrained
//   recovery that drops a running cycle           recover
//   the next bit made durable after the data      applyWrite (step order)
//   completion before the deferred next bits are  persistNext (no sync)
//     durable
//   recovery that does not rebuild the next bits  rebuildNext (do nothing)
//     from the COW index
//   the COW copy written after the overwrite      applyWrite (step order)
//   a swap done in two durable steps              swapMaps
//   a write acknowledged before it is durable     writePrimary (no sync)
//   the view sent as P for regions 8 and up       snapshotView
//   a write of the first sector only              writePrimary
//   a transfer up to the first zero byte          snapshotView
//   next bits kept for regions 0..7 only          markNext
//   no copy-on-write after 50 operations          applyWrite, needsPreserve, ...
//   the third swap since open keeps a next bit    swapMaps
//   a transfer in two synced halves               sendRegions
//   create of an unaligned region size            geometryProblem (static)
//   create over an existing volume                refusesExistingVolume (static)
//   open of a volume another process holds        honoursLock (static)
//   recovery that ignores digests (a rotted COW   isTornPreserve (always true)
//     copy taken for a torn preserve)
//
// Errors: a rejected call (docs/protocol.md section 2) throws a CowmapError before any I/O
// and changes nothing. A storage failure (ENOSPC, EIO, ...) throws E_IO and
// poisons the handle: every later call but close throws E_IO until the volume is
// reopened, because after a failed fsync the kernel may have dropped the dirty
// pages and a retry could report success over lost data ("fsyncgate"). Reopening
// runs recovery from what is durable. Anything else thrown from below (a harness's
// simulated crash, an assertion) also poisons the handle, and travels up untouched.

import { assert } from './assert.ts';
import { Bitmap } from './bitmap.ts';
import { bytesEqual, sha256, sha256Hex } from './checksum.ts';
import type { CowStore } from './cowStore.ts';
import { createVolumeParts } from './createVolume.ts';
import { CowmapError, isStorageError } from './errors.ts';
import { geometryProblem, type Geometry } from './geometry.ts';
import type { MapFile } from './mapFile.ts';
import type { MetadataStore, Phase } from './metadata.ts';
import { openVolumeParts } from './openVolume.ts';
import {
  checkDamagedEntries,
  checkMapPages,
  checkMetadataEvidence,
  OpenRepairs,
  type RecoveryFiles,
} from './recoveryChecks.ts';
import type { RegionFile } from './regionFile.ts';
import { scrubVolume } from './scrub.ts';
import type { ScrubOptions, ScrubReport } from './scrubFinding.ts';
import { volumeScrubTarget, type ScrubbedVolume } from './volumeScrub.ts';
import type { Replica } from './replica.ts';
import type { Lock, Storage } from './storage.ts';
import {
  asVolumeError,
  closeParts,
  type CreateOptions,
  type OpenOptions,
  type VolumeParts,
  type VolumeRules,
} from './volumeParts.ts';

export type { Phase } from './metadata.ts';
export type VolumeName = 'primary' | 'secondary';
/** One write of writeMany: `bytes` at byte `offset` of P. */
export interface ByteWrite {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** What `state()` reports (docs/protocol.md section 6, docs/adapter.md `state`). */
export interface VolumeState {
  phase: Phase;
  /** Bit strings, region 0 first, e.g. "0100". */
  current: string;
  next: string;
  cow: string;
  /** Lower-case hex SHA-256 of each region's bytes. */
  primary: string[];
  secondary: string[];
  cowData: (string | null)[];
}

export type { CreateOptions, OpenOptions, VolumeParts } from './volumeParts.ts';

type VolumeClass<T> = new (parts: VolumeParts) => T;

/** Regions named in one message at most. */
const regionsListedMax = 8;
/** The most bytes one read returns: the result is one buffer in memory. */
export const readBytesMax = 2 ** 30;

export class ReplicatedVolume {
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
  /** Set only by scrubDir with repair, for the recovery of that open (see RecoveryRepair). */
  private openRepairs: OpenRepairs | null = null;
  /** Volatile: the regions of C sent since the swap or since the last open. */
  protected readonly sent: Bitmap;
  private readonly lock: Lock;
  /** Why the handle is poisoned, or null while it is usable. */
  private failure: string | null = null;
  /** writeMany left bytes of P in the OS that no fdatasync has covered yet (flush, startCycle and close sync them). */
  protected primaryUnsynced = false;
  private closed = false;

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
    assert(this.replica.regions === this.regions && this.replica.regionSize === this.regionSize, 'replica geometry');
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Creates an all-zero volume in `dir` (made if missing) and its secondary, and
   * opens it. E_SIZE for bad geometry, E_EXISTS when a volume is there, E_LOCKED
   * when another holder has the directory. The files and their durable order:
   * impl/createVolume.ts.
   */
  static create<T extends ReplicatedVolume>(
    this: VolumeClass<T>,
    storage: Storage,
    dir: string,
    geometry: Geometry,
    options: CreateOptions = {},
  ): T {
    const parts = createVolumeParts(storage, dir, geometry, options, volumeRules(this));
    return recoverParts(this, parts, `create(${dir})`, 'E_IO');
  }

  /**
   * Opens the volume in `dir` and recovers it: a cycle that was running resumes,
   * with nothing sent yet. E_NOT_FOUND, E_LOCKED, or E_CORRUPT for anything that is
   * not a volume this build wrote (never repaired silently). The files:
   * impl/openVolume.ts.
   */
  static open<T extends ReplicatedVolume>(
    this: VolumeClass<T>,
    storage: Storage,
    dir: string,
    options: OpenOptions = {},
  ): T {
    const parts = openVolumeParts(storage, dir, options, volumeRules(this));
    // A file that the metadata needs and that is missing: the volume is inconsistent.
    return recoverParts(this, parts, `open(${dir})`, 'E_CORRUPT');
  }

  /**
   * `cowmap scrub DIR [--repair]` (docs/format.md, "Scrub"). Without repair: a
   * read-only open, then scrub. With repair: a read-write open whose recovery
   * repairs what marking regions in X deals with (a map page with a lost bit, a
   * rotted COW copy or entry) instead of refusing the volume, each reported as a
   * repaired finding; then scrub with repair. What no resend can mend (the
   * metadata's evidence rule, a foreign or missing file) is still E_CORRUPT.
   */
  static scrubDir<T extends ReplicatedVolume>(
    this: VolumeClass<T>,
    storage: Storage,
    dir: string,
    options: ScrubOptions & Pick<OpenOptions, 'secondaryDir'>,
  ): ScrubReport {
    const repair = options.repair === true;
    const openOptions: OpenOptions = {
      readOnly: !repair,
      ...(options.secondaryDir === undefined ? {} : { secondaryDir: options.secondaryDir }),
    };
    const repairs = new OpenRepairs();
    const parts = openVolumeParts(storage, dir, openOptions, volumeRules(this));
    const volume = recoverParts(this, parts, `scrub(${dir})`, 'E_CORRUPT', repair ? repairs : null);
    try {
      const report = volume.scrub({ repair });
      const repairedRegions = new Bitmap(volume.regions);
      for (const region of [...repairs.regions, ...report.repairedRegions]) repairedRegions.set(region);
      return {
        ...report,
        findings: [...repairs.findings, ...report.findings],
        repairedRegions: repairedRegions.regionsSet(),
      };
    } finally {
      volume.close();
    }
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

  private closeFiles(): void {
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

  /** C as a list: empty while idle. */
  currentRegions(): number[] {
    this.checkUsable(this.where('currentRegions'));
    return this.currentMap.bits.regionsSet();
  }

  /** The regions of C not sent since the swap or since the last open. */
  unsentRegions(): number[] {
    this.checkUsable(this.where('unsentRegions'));
    return this.currentMap.bits.regionsSet().filter((region) => !this.sent.has(region));
  }

  nextRegions(): number[] {
    this.checkUsable(this.where('nextRegions'));
    return this.nextMap.bits.regionsSet();
  }

  /** X[region]: set in memory, durable or deferred (for BLOCK_STATUS's map of the next map). */
  hasNext(region: number): boolean {
    const where = this.where('hasNext', `region ${region}`);
    this.checkUsable(where);
    this.checkRegion(where, region);
    return this.nextMap.has(region);
  }

  /** C[region]: always false while idle (the current map file is ignored then). */
  hasCurrent(region: number): boolean {
    const where = this.where('hasCurrent', `region ${region}`);
    this.checkUsable(where);
    this.checkRegion(where, region);
    return this.phase === 'replicating' && this.currentMap.has(region);
  }

  /** The regions whose COW slot holds a copy for the running cycle: empty while idle. */
  preservedRegions(): number[] {
    this.checkUsable(this.where('preservedRegions'));
    return this.cow.preservedRegions();
  }

  /** Everything docs/protocol.md section 6 asks an implementation to report. Reads every region. */
  state(): VolumeState {
    const where = this.where('state');
    this.checkUsable(where);
    return this.perform(where, () => {
      const primary: string[] = [];
      const secondary: string[] = [];
      const cowData: (string | null)[] = [];
      for (let region = 0; region < this.regions; region++) {
        primary.push(sha256Hex(this.primary.readRegion(region)));
        secondary.push(sha256Hex(this.readSecondary(region)));
        cowData.push(this.cow.holds(region) ? sha256Hex(this.cow.read(region)) : null);
      }
      const cow = new Bitmap(this.regions);
      for (const region of this.cow.preservedRegions()) cow.set(region);
      return {
        phase: this.phase,
        current: this.currentMap.bits.toBitString(),
        next: this.nextMap.bits.toBitString(),
        cow: cow.toBitString(),
        primary,
        secondary,
        cowData,
      };
    });
  }

  /**
   * `cowmap scrub` (docs/format.md, "Scrub"): reads every checksummed structure and
   * both images, and reports each mismatch with its file, offset and region. With
   * `repair`, marks the affected regions in X durably so that the next cycle resends
   * them from P, rewrites failing map and digest pages and drops COW copies that
   * fail their digest; refused (E_BAD_REQUEST) on a volume open read-only.
   */
  scrub(options: ScrubOptions): ScrubReport {
    const repair = typeof options === 'object' && options !== null ? options.repair : undefined;
    const where = this.where('scrub', repair === true ? 'repair' : '');
    this.checkUsable(where);
    if (typeof repair !== 'boolean')
      throw new CowmapError('E_BAD_REQUEST', `${where}: options.repair must be true or false`);
    if (repair) this.checkWritable(where);
    return this.perform(where, () => scrubVolume(volumeScrubTarget(this.scrubbed()), { repair }));
  }

  private scrubbed(): ScrubbedVolume {
    const volume = this;
    return {
      dir: this.dir,
      regions: this.regions,
      regionSize: this.regionSize,
      get phase() {
        return volume.phase;
      },
      get cycle() {
        return volume.cycle;
      },
      files: this.recoveryFiles(),
      isPending: (region) => this.isPending(region),
    };
  }

  // -------------------------------------------------------------- region API

  /** P[region] := data (docs/protocol.md section 2, write). */
  writeRegion(region: number, data: Uint8Array): void {
    const where = this.where('write', `region ${region}`);
    this.checkUsable(where);
    this.checkWritable(where);
    this.checkRegion(where, region);
    this.checkData(where, data);
    this.perform(where, () => this.applyWrite(region, data));
  }

  /** P[region], or S[region] with `volume: 'secondary'`. */
  readRegion(region: number, volume: VolumeName = 'primary'): Uint8Array {
    const where = this.where('read', `region ${region}`);
    this.checkUsable(where);
    this.checkVolumeName(where, volume);
    this.checkRegion(where, region);
    return this.perform(where, () =>
      volume === 'primary' ? this.primary.readRegion(region) : this.readSecondary(region),
    );
  }

  /** The swap: C := X, X := clear, W := empty, phase replicating. */
  startCycle(): void {
    const where = this.where('startCycle');
    this.checkUsable(where);
    this.checkWritable(where);
    if (this.phase !== 'idle') throw new CowmapError('E_PHASE', `${where}: a cycle is running`);
    this.perform(where, () => {
      // P@swap must be durable before the swap is: a transfer reads P through the
      // page cache, and a power loss that took back a buffered write the cycle sent
      // would leave S ahead of P in a region no map covers any more.
      if (this.primaryUnsynced) {
        this.primary.sync();
        this.primaryUnsynced = false;
      }
      this.swapMaps();
    });
  }

  /** S[region] := view(region); the region counts as sent. Sending again is allowed. */
  transfer(region: number): void {
    const where = this.where('transfer', `region ${region}`);
    this.checkUsable(where);
    this.checkWritable(where);
    this.checkRegion(where, region);
    if (this.phase !== 'replicating') throw new CowmapError('E_PHASE', `${where}: no cycle is running`);
    if (!this.currentMap.has(region))
      throw new CowmapError('E_NOT_CURRENT', `${where}: region ${region} is not in the current map`);
    this.perform(where, () => {
      this.sendRegions([region]);
      // Volatile on purpose: after a crash every region of C is sent again.
      this.sent.set(region);
    });
  }

  /**
   * transfer() of each region, in the order given, with ONE sync of the secondary
   * for the lot instead of one per region. The whole call is judged before any
   * I/O, arguments before state as docs/protocol.md section 2 orders it: E_RANGE for the
   * first region out of range, then E_PHASE, then E_NOT_CURRENT for the first
   * region not in C; so a rejection sends nothing. The regions count as sent only
   * when it returns; a crash inside leaves each S[r] of the list old, new or torn,
   * and nothing counts as sent (as after any crash). A region may repeat.
   */
  transferRegions(regions: readonly number[]): void {
    const where = this.where('transferRegions', Array.isArray(regions) ? `${regions.length} region(s)` : '');
    this.checkUsable(where);
    this.checkWritable(where);
    if (!Array.isArray(regions)) throw new CowmapError('E_BAD_REQUEST', `${where}: regions must be an array`);
    for (const region of regions) this.checkRegion(this.where('transferRegions', `region ${region}`), region);
    if (this.phase !== 'replicating') throw new CowmapError('E_PHASE', `${where}: no cycle is running`);
    for (const region of regions) {
      if (!this.currentMap.has(region)) {
        throw new CowmapError(
          'E_NOT_CURRENT',
          `${this.where('transferRegions', `region ${region}`)}: region ${region} is not in the current map`,
        );
      }
    }
    this.perform(where, () => {
      this.sendRegions(regions);
      for (const region of regions) this.sent.set(region);
    });
  }

  /** C := clear, W := empty, phase idle; every region of C must have been sent. */
  completeCycle(): void {
    const where = this.where('completeCycle');
    this.checkUsable(where);
    this.checkWritable(where);
    if (this.phase !== 'replicating') throw new CowmapError('E_PHASE', `${where}: no cycle is running`);
    if (!this.isDrained()) {
      const unsent = this.unsentRegions();
      const listed = unsent.slice(0, regionsListedMax).join(', ') + (unsent.length > regionsListedMax ? ', ...' : '');
      throw new CowmapError(
        'E_NOT_DRAINED',
        `${where}: ${unsent.length} region(s) of the current map not sent: ${listed}`,
      );
    }
    this.perform(where, () => this.clearCurrent());
  }

  // ---------------------------------------------------------------- byte API

  get sizeBytes(): number {
    return this.regions * this.regionSize;
  }

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
      const result = new Uint8Array(length);
      if (length === 0) return result;
      const first = Math.floor(offset / this.regionSize);
      const last = Math.floor((offset + length - 1) / this.regionSize);
      for (let region = first; region <= last; region++) {
        const content = volume === 'primary' ? this.primary.readRegion(region) : this.readSecondary(region);
        const regionStart = region * this.regionSize;
        const start = Math.max(offset, regionStart);
        const end = Math.min(offset + length, regionStart + this.regionSize);
        result.set(content.subarray(start - regionStart, end - regionStart), start - offset);
      }
      return result;
    });
  }

  /**
   * S[region], checked against the secondary's digest table unless the region is
   * pending (docs/format.md, "DIR2/digests"): a mismatch is E_CORRUPT.
   */
  private readSecondary(region: number): Uint8Array {
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

  // ------------------------------------------------- the steps (overridable)

  protected get currentMap(): MapFile {
    return this.maps[this.metadata.record.currentMap];
  }

  protected get nextMap(): MapFile {
    return this.maps[this.metadata.record.currentMap === 0 ? 1 : 0];
  }

  /** The durable order of a write (docs/protocol.md section 5; docs/format.md, "write"). */
  protected applyWrite(region: number, data: Uint8Array): void {
    // The COW copy is durable before the primary region is overwritten: a crash
    // after the overwrite must still find P@swap[region] in W.
    if (this.needsPreserve(region)) this.preserveRegion(region);
    // The next bit is durable before the data write, in the map or through W's
    // entry: new data in P with X clear would never reach S (INV-COVER).
    this.markNext(region);
    // Acknowledged only once durable: writePrimary syncs before returning.
    this.writePrimary(region, data);
  }

  /** Copy-on-write for every region written while replicating, once per cycle (FIG. 4B T3). */
  protected needsPreserve(region: number): boolean {
    return this.phase === 'replicating' && !this.cow.holds(region);
  }

  /** W[region] := P[region], durable when this returns (data slot, index entry, one sync). */
  protected preserveRegion(region: number): void {
    this.cow.preserve(region, this.primary.readRegion(region), this.metadata.record.cycle);
  }

  /** preserveRegion of each region with ONE sync of the COW file for the lot (writeMany's group commit). */
  protected preserveRegions(regions: readonly number[]): void {
    const cycle = this.metadata.record.cycle;
    this.cow.preserveMany(regions, (region) => this.primary.readRegion(region), cycle);
  }

  /** markNext of each region, with ONE sync of the map for the bits set while idle (writeMany's group commit). */
  protected markNextMany(regions: readonly number[]): void {
    if (this.phase === 'idle') {
      this.nextMap.setMany(regions);
      return;
    }
    for (const region of regions) this.markNext(region);
  }

  /**
   * X[region] := 1, durable when this returns; no I/O when the bit is already set.
   * While replicating, every written region holds a COW copy for the cycle (FIG. 4B
   * T3), and its durable entry already says "written this cycle": recovery
   * rebuilds X from the entries (rebuildNext). So the bit is set in memory only,
   * and completion writes and syncs the map bytes before the entries go stale
   * (persistNext). That saves a write and an fdatasync on every first write in a
   * cycle. While idle there is no entry: the bit's byte is written and synced here.
   */
  protected markNext(region: number): void {
    if (this.phase === 'replicating' && this.cow.holds(region)) {
      this.nextMap.setDeferred(region);
    } else {
      this.nextMap.set(region);
    }
  }

  /** P[region] := data: pwrite, then fdatasync before the write is acknowledged. */
  protected writePrimary(region: number, data: Uint8Array): void {
    this.primary.writeRegion(region, data);
    this.primary.sync();
  }

  /**
   * The swap as ONE durable step: one metadata update flips the roles of the two map
   * files, bumps the cycle number (which empties W: every COW entry names an older
   * cycle) and sets the phase. O(1) I/O: no map is copied or rewritten. The file
   * that becomes X is the old C, all clear since completion or recovery.
   */
  protected swapMaps(): void {
    const record = this.metadata.record;
    assert(this.currentMap.isClear(), 'the map that becomes next at the swap is not clear');
    // Idle writes sync their bits, and completion made the deferred ones durable.
    assert(!this.nextMap.hasDeferred, 'next bits still deferred at the swap');
    this.metadata.update({
      phase: 'replicating',
      cycle: record.cycle + 1,
      currentMap: record.currentMap === 0 ? 1 : 0,
    });
    this.cow.forget();
    this.sent.clearAll();
  }

  /** view(region) = W[region] if it holds a copy, else P[region]. */
  protected snapshotView(region: number): Uint8Array {
    return this.cow.holds(region) ? this.cow.read(region) : this.primary.readRegion(region);
  }

  /** S[r] := view(r) for each region; the replica makes them all durable with one sync. */
  protected sendRegions(regions: readonly number[]): void {
    this.replica.writeRegions(regions, (region) => this.snapshotView(region));
  }

  /** Every region of C was sent since the swap or since the last open. */
  protected isDrained(): boolean {
    return this.currentMap.bits.regionsSet().every((region) => this.sent.has(region));
  }

  /**
   * Completion. The durable step that completes the cycle is ONE metadata update
   * (phase idle); from then on the current map file is ignored and W is empty.
   * Only after it are C's bytes zeroed and synced, so that the map is clear before
   * the next swap makes it X; a crash in between leaves them set, and recovery
   * finishes the clearing.
   */
  protected clearCurrent(): void {
    this.persistNext();
    this.metadata.update({ phase: 'idle' });
    this.cow.forget();
    this.sent.clearAll();
    this.currentMap.clearAll();
  }

  /**
   * The next bits set this cycle are durable only through W's entries, which go
   * stale at completion: the next map's bytes holding them are written and synced
   * first (no I/O when none was deferred).
   */
  protected persistNext(): void {
    this.nextMap.flush();
  }

  /**
   * Recovery, run by open (and create) on what is durable. First the integrity
   * checks of docs/format.md, "Recovery" (impl/recoveryChecks.ts): a damaged
   * structure is kept only with evidence that a crash tore it and nothing is lost,
   * else E_CORRUPT. Idle: finish clearing a current map that a crash after
   * completion left set (no I/O when clear). Replicating: the cycle resumes with C
   * as it is, W as the index says, X as the map says plus every region W holds a
   * copy of, and nothing sent. Read-only, all of it happens in memory only.
   */
  protected recover(): void {
    this.sent.clearAll();
    this.cow.forget();
    const files = this.recoveryFiles();
    const repairs = this.openRepairs;
    checkMetadataEvidence(files);
    if (this.phase === 'idle') {
      checkMapPages(files, false, !this.readOnly, repairs);
      if (this.readOnly) this.currentMap.clearInMemory();
      else this.currentMap.clearAll();
    } else {
      const rotted: { region: number; offset: number; problem: string }[] = [];
      const scan = this.cow.loadCycle(
        this.metadata.record.cycle,
        this.metadata.record.sequence,
        (region, digest) => this.isTornPreserve(region, digest),
        repairs === null ? null : (region, offset, problem) => rotted.push({ region, offset, problem }),
      );
      checkMapPages(files, true, !this.readOnly, repairs);
      for (const { region, offset, problem } of rotted) {
        // X first: the entry may be the only durable record of the region's next bit.
        repairs!.repair({ file: this.cow.file.path, offset, region, problem }, [region]);
        this.cow.dropCopy(region);
      }
      this.rebuildNext();
      checkDamagedEntries(files, scan.damagedEntries, repairs);
    }
  }

  /**
   * A valid COW entry of the running cycle whose slot fails its digest: a preserve
   * torn by a crash exactly when the primary still holds the digest's bytes (it is
   * overwritten only after the preserve is durable). Otherwise the copy rotted.
   */
  protected isTornPreserve(region: number, digest: Uint8Array): boolean {
    return bytesEqual(sha256(this.primary.readRegion(region)), digest);
  }

  /** The files as recovery and scrub see them; the roles of the maps are read when asked (a swap flips them). */
  private recoveryFiles(): RecoveryFiles {
    const volume = this;
    return {
      metadata: this.metadata,
      maps: this.maps,
      get currentMap() {
        return volume.currentMap;
      },
      get nextMap() {
        return volume.nextMap;
      },
      cow: this.cow,
      primary: this.primary,
      replica: this.replica,
    };
  }

  /**
   * X[r] := 1 for every r that W holds a copy of: a copy is made only by a write in
   * this cycle, whose next bit may not have reached the map (markNext). The bits
   * are set deferred, as markNext sets them: no I/O here.
   */
  protected rebuildNext(): void {
    for (const region of this.cow.preservedRegions()) this.nextMap.setDeferred(region);
  }

  // ------------------------------------------------------------------ checks

  /** How a message names the call: "transfer(region 2) while idle". */
  protected where(operation: string, subject = ''): string {
    return `${operation}(${subject}) while ${this.phase}`;
  }

  private checkUsable(where: string): void {
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

  private checkRegion(where: string, region: number): void {
    if (!Number.isInteger(region) || region < 0 || region >= this.regions) {
      throw new CowmapError('E_RANGE', `${where}: region ${region} is outside 0..${this.regions - 1}`);
    }
  }

  private checkData(where: string, data: Uint8Array): void {
    if (!(data instanceof Uint8Array) || data.length !== this.regionSize) {
      const got = data instanceof Uint8Array ? `${data.length} bytes` : 'no bytes';
      throw new CowmapError('E_SIZE', `${where}: data must be exactly ${this.regionSize} bytes, got ${got}`);
    }
  }

  private checkVolumeName(where: string, volume: VolumeName): void {
    if (volume !== 'primary' && volume !== 'secondary') {
      throw new CowmapError(
        'E_BAD_REQUEST',
        `${where}: volume must be "primary" or "secondary", got ${String(volume)}`,
      );
    }
  }

  private checkByteRange(where: string, offset: number, length: number): void {
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
   * E_IO, anything else travels up untouched.
   */
  private perform<T>(where: string, body: () => T): T {
    try {
      return body();
    } catch (error) {
      this.failure = isStorageError(error) ? `${error.code} in ${where}` : `${errorName(error)} in ${where}`;
      throw asVolumeError(error, where, 'E_IO');
    }
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

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

/** The rules of a volume class (its static members; a mutant's subclass overrides some). */
function volumeRules(volumeClass: unknown): VolumeRules {
  const rules = volumeClass as typeof ReplicatedVolume & {
    syncFilesAtOpen: boolean;
    refusesExistingVolume: boolean;
    honoursLock: boolean;
  };
  return {
    geometryProblem: (geometry) =>
      (rules as unknown as { geometryProblem(g: Geometry): string | null }).geometryProblem(geometry),
    refusesExistingVolume: rules.refusesExistingVolume,
    honoursLock: rules.honoursLock,
    syncFilesAtOpen: rules.syncFilesAtOpen,
  };
}

/** Builds the volume on its parts and runs recovery; on any failure the parts are closed and the lock released. */
function recoverParts<T extends ReplicatedVolume>(
  volumeClass: VolumeClass<T>,
  parts: VolumeParts,
  where: string,
  missingAs: 'E_IO' | 'E_CORRUPT',
  repairs: OpenRepairs | null = null,
): T {
  try {
    const volume = new volumeClass(parts);
    const internals = volume as unknown as { recover(): void; openRepairs: OpenRepairs | null; nextMap: MapFile };
    if (repairs !== null) {
      repairs.nextMap = () => internals.nextMap;
      internals.openRepairs = repairs;
    }
    try {
      internals.recover();
    } finally {
      internals.openRepairs = null;
    }
    return volume;
  } catch (error) {
    closeParts(parts);
    throw asVolumeError(error, where, missingAs);
  }
}
