import { Bitmap } from './bitmap.ts';
import { sha256Hex } from './checksum.ts';
import { createVolumeParts } from './createVolume.ts';
import { CowmapError, ReplicaLinkError } from './errors.ts';
import type { Geometry } from './geometry.ts';
import type { Phase } from './metadata.ts';
import type { LinkStatus } from './remote/linkStatus.ts';
import { openVolumeParts } from './openVolume.ts';
import { OpenRepairs } from './recoveryChecks.ts';
import { scrubVolume } from './scrub.ts';
import type { ScrubOptions, ScrubReport } from './scrubFinding.ts';
import { volumeScrubTarget, type ScrubbedVolume } from './volumeScrub.ts';
import type { Storage } from './storage.ts';
import type { CreateOptions, OpenOptions } from './volumeParts.ts';
import { recoverParts, type VolumeClass, volumeRules } from './volumeRecovery.ts';
import { VolumeBytes } from './volumeBytes.ts';
import type { VolumeName } from './volumeCore.ts';
export type { ByteWrite, Phase, VolumeName } from './volumeCore.ts';
export { readBytesMax } from './volumeBytes.ts';

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

/** Regions named in one message at most. */
const regionsListedMax = 8;

export class ReplicatedVolume extends VolumeBytes {
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
    this.checkRegionQuery('hasNext', region);
    return this.nextMap.has(region);
  }

  /** C[region]: always false while idle (the current map file is ignored then). */
  hasCurrent(region: number): boolean {
    this.checkRegionQuery('hasCurrent', region);
    return this.phase === 'replicating' && this.currentMap.has(region);
  }

  /**
   * checkUsable and checkRegion for a per-region query that BLOCK_STATUS asks up to
   * 2^20 times a reply: the message naming the call is built only for a rejection.
   */
  private checkRegionQuery(operation: string, region: number): void {
    const usable = !this.closed && this.failure === null;
    if (usable && Number.isInteger(region) && region >= 0 && region < this.regions) return;
    const where = this.where(operation, `region ${region}`);
    this.checkUsable(where);
    this.checkRegion(where, region);
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

  /** The remote secondary's link as `cowmap status` shows it (no I/O); null for a local secondary. */
  linkStatus(): LinkStatus | null {
    return this.replica.linkStatus?.() ?? null;
  }

  /**
   * One attempt to reach the remote secondary (a connect if needed and a read of its
   * control block; nothing written) and the link's status after it; null for a local
   * secondary. A failure is in the status, not thrown.
   */
  probeLink(): LinkStatus | null {
    return this.replica.probeLink?.() ?? null;
  }

  /**
   * The secondary's consistent image at `region`: P@swap of the last completed cycle
   * (INV-DR, docs/protocol.md section 10), whatever a running cycle has sent so far.
   * E_BAD_REQUEST when the secondary keeps no consistent image (a directory or a
   * plain NBD export: their S is updated in place).
   */
  readConsistent(region: number): Uint8Array {
    const where = this.where('readConsistent', `region ${region}`);
    this.checkUsable(where);
    this.checkRegion(where, region);
    const read = this.replica.readConsistentRegion;
    if (read === undefined) {
      throw new CowmapError(
        'E_BAD_REQUEST',
        `${where}: the secondary keeps no consistent image (it is updated in place)`,
      );
    }
    return this.perform(where, () => read(region));
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
      this.replica.cycleRunning(this.cycle);
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
    this.perform(where, () => {
      // A remote secondary confirms the cycle (its complete signal and a FLUSH) before
      // the durable step that completes it here: never complete what the far side lost.
      try {
        this.replica.confirmCycle(this.cycle);
      } catch (error) {
        // The far side lost regions it had confirmed: all of C goes again before completion.
        if (error instanceof ReplicaLinkError && error.lostSent) this.sent.clearAll();
        throw error;
      }
      this.clearCurrent();
    });
  }
}
