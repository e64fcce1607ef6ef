// The `consistent:` secondary (a local directory DIR2): a Replica over a receiver's
// store (receiverStore.ts), driven in process the way the primary drives `cowmap
// receive` over NBD (impl/remote/controlBlock.ts, docs/protocol.md section 10): each
// batch of transfers is the control block {N, sending, batch k}, the region writes
// and a flush; confirmCycle is the block {N, complete} and a flush, which commits the
// cycle: the store's consistent image becomes P@swap of N in one durable step.
// `S` as the volume reads it (readRegion, the digests) is the store's latest image,
// the running cycle's writes included; readConsistentRegion is the consistent one.
// The digest table DIR2/digests (impl/digestTable.ts) is kept as FileReplica keeps it.

import { crc32 } from '../checksum.ts';
import { DigestTable, digestTableSize } from '../digestTable.ts';
import { CowmapError, isCowmapError } from '../errors.ts';
import { volumeSize } from '../geometry.ts';
import { volumePath } from '../layout.ts';
import {
  controlBlockSize,
  controlOffsetOf,
  type ControlState,
  decodeControlBlock,
  encodeControlBlock,
  exportSizeOf,
} from '../remote/controlBlock.ts';
import {
  type DigestPageProblem,
  digestsFileName,
  type ReadRegionOptions,
  type Replica,
  type ReplicaIdentity,
  type ReplicaOpenOptions,
} from '../replica.ts';
import type { FileHandle, Storage } from '../storage.ts';
import { closeQuietly } from '../createdFiles.ts';
import { receiverPaths, removeReceiverFiles } from './receiverFiles.ts';
import { ReceiverStore } from './receiverStore.ts';

export class ReceiverReplica implements Replica {
  readonly dir: string;
  readonly store: ReceiverStore;
  private readonly identity: ReplicaIdentity;
  private readonly digests: DigestTable;
  /** The cycle the volume said is running, and the batches of it this open confirmed. */
  private running: { cycle: number; swapTimeMs: number; batches: number } | null = null;

  private constructor(dir: string, store: ReceiverStore, identity: ReplicaIdentity, digests: DigestTable) {
    this.dir = dir;
    this.store = store;
    this.identity = identity;
    this.digests = digests;
  }

  get regions(): number {
    return this.identity.regions;
  }

  get regionSize(): number {
    return this.identity.regionSize;
  }

  get imagePath(): string {
    return receiverPaths(this.dir).image;
  }

  get digestsPath(): string {
    return this.digests.file.path;
  }

  /**
   * A new consistent secondary in `dir`: the store, the digest table (created at full
   * size and synced), then the claim of docs/protocol.md section 10: cycle 0 is
   * {0, sending}, zeros over the image, {0, complete}, a flush. So S = zeros, committed.
   */
  static create(storage: Storage, dir: string, identity: ReplicaIdentity): ReceiverReplica {
    const store = ReceiverStore.create(storage, dir, exportSizeOf(identity));
    let digestsFile: FileHandle | null = null;
    try {
      const path = volumePath(dir, digestsFileName);
      if (storage.exists(path)) throw new CowmapError('E_EXISTS', `create: ${path} exists`);
      digestsFile = storage.open(path, { create: true });
      digestsFile.truncate(digestTableSize(identity.regions));
      digestsFile.sync();
      storage.syncDir(dir);
      const digests = DigestTable.load(digestsFile, identity.regions, identity.regionSize);
      const replica = new ReceiverReplica(dir, store, identity, digests);
      replica.claim();
      return replica;
    } catch (error) {
      if (digestsFile !== null) closeQuietly(digestsFile);
      store.close();
      // What create made goes again, as FileReplica.create's: the volume's create reports the error.
      removeReceiverFiles(storage, dir, digestsFile === null ? [] : [volumePath(dir, digestsFileName)]);
      throw error;
    }
  }

  /**
   * Opens (and recovers) the store in `dir`; E_CORRUPT when it is missing (the volume's
   * secondary is gone, as FileReplica.open says), another volume's, unclaimed, or of another size.
   */
  static open(
    storage: Storage,
    dir: string,
    identity: ReplicaIdentity,
    options: ReplicaOpenOptions = {},
  ): ReceiverReplica {
    const readOnly = options.readOnly === true;
    const store = openStore(storage, dir, readOnly);
    let digestsFile: FileHandle | null = null;
    try {
      const problem = identityProblem(store, identity);
      if (problem !== null)
        throw new CowmapError('E_CORRUPT', `open: the secondary in ${dir} is not this volume's: ${problem}`);
      const path = volumePath(dir, digestsFileName);
      if (!storage.exists(path)) throw new CowmapError('E_CORRUPT', `open: ${path} is missing`);
      digestsFile = storage.open(path, { create: false, readOnly });
      if (!readOnly) digestsFile.sync();
      const digests = DigestTable.load(digestsFile, identity.regions, identity.regionSize);
      return new ReceiverReplica(dir, store, identity, digests);
    } catch (error) {
      if (digestsFile !== null) closeQuietly(digestsFile);
      store.close();
      throw error;
    }
  }

  private claim(): void {
    this.control(0, 'sending', 0);
    this.store.writeZeroes(0, volumeSize(this.identity));
    this.control(0, 'complete', 0);
    this.store.flush();
  }

  private control(cycle: number, state: ControlState, batch: number): void {
    const swapTimeMs = this.running?.cycle === cycle ? this.running.swapTimeMs : 0;
    const block = encodeControlBlock({ ...this.identity, state, cycle, swapTimeMs, batch });
    this.store.write(controlOffsetOf(this.identity), block);
  }

  cycleRunning(cycle: number): void {
    if (this.running?.cycle === cycle) return;
    // Opened in the middle of a cycle: the swap time its start block carried, when the store has it.
    const latest = this.store.status().runningCycle === cycle ? this.latestControlSwapTime() : null;
    this.running = { cycle, swapTimeMs: latest ?? Date.now(), batches: 0 };
  }

  /** The control block, the regions, one flush; then the digests, as FileReplica (the image first, then the table). */
  writeRegions(regions: readonly number[], contentOf: (region: number) => Uint8Array): void {
    if (regions.length === 0) return;
    const running = this.running;
    if (running === null) throw new CowmapError('E_PHASE', `transfer(region ${regions[0]}): no cycle is running`);
    const pages = this.digests.prepare(regions, `transfer(region ${regions[0]})`);
    this.control(running.cycle, 'sending', running.batches);
    const crcs = new Map<number, number>();
    for (const region of regions) {
      const data = contentOf(region);
      this.store.write(region * this.regionSize, data);
      crcs.set(region, crc32(data));
    }
    this.store.flush();
    running.batches++;
    this.digests.update(pages, crcs);
    this.digests.sync();
  }

  /** The complete block and a flush: the store commits the cycle (its consistent image becomes P@swap of it). */
  confirmCycle(cycle: number): void {
    if (this.store.status().runningCycle !== cycle) {
      // No batch of this cycle reached the store since its start (an empty C, or a store
      // that committed it already before the primary crashed): open it, so that the
      // complete signal commits exactly this cycle.
      this.cycleRunning(cycle);
      this.control(cycle, 'sending', this.running!.batches);
    }
    this.control(cycle, 'complete', this.running?.batches ?? 0);
    this.store.flush();
    this.running = null;
  }

  readonly readConsistentRegion = (region: number): Uint8Array => {
    this.checkRegion(region);
    return this.store.readConsistent(region * this.regionSize, this.regionSize);
  };

  readRegion(region: number, options: ReadRegionOptions = {}): Uint8Array {
    this.checkRegion(region);
    const bytes = this.store.readLatest(region * this.regionSize, this.regionSize);
    if (options.verify === true && crc32(bytes) !== this.digests.entry(region, `read(region ${region})`)) {
      throw new CowmapError(
        'E_CORRUPT',
        `read(region ${region}): ${this.imagePath} region ${region}: the region does not match its digest in ${this.digestsPath}`,
      );
    }
    return bytes;
  }

  digestOf(region: number): number {
    return this.digests.entry(region);
  }

  verifyRegion(region: number): boolean {
    return crc32(this.readRegion(region)) === this.digests.entry(region);
  }

  setPending(pending: (region: number) => boolean): void {
    this.digests.pending = pending;
  }

  digestPageProblems(): DigestPageProblem[] {
    const problems: DigestPageProblem[] = [];
    for (let page = 0; page < this.digests.pageCount; page++) {
      if (!this.digests.isRotten(page)) continue;
      const { first, end } = this.digests.regionsOf(page);
      problems.push({ page, offset: this.digests.offsetOf(page), firstRegion: first, regionCount: end - first });
    }
    return problems;
  }

  rewriteDigestPages(pages: readonly number[]): void {
    if (pages.length === 0) return;
    this.digests.rewritePages(pages, (region) => crc32(this.readRegion(region)));
    this.digests.sync();
  }

  close(): void {
    closeQuietly(this.digests.file);
    this.store.close();
  }

  private checkRegion(region: number): void {
    if (!Number.isInteger(region) || region < 0 || region >= this.regions)
      throw new CowmapError('E_RANGE', `region ${region} of ${this.regions}`);
  }

  /** The swap time of the control block the store holds last (its running cycle's start), or null. */
  private latestControlSwapTime(): number | null {
    const decoded = decodeControlBlock(this.store.readLatest(controlOffsetOf(this.identity), controlBlockSize));
    return decoded.kind === 'block' && decoded.block.swapTimeMs > 0 ? decoded.block.swapTimeMs : null;
  }
}

/** The volume's store; a store that is not there is a damaged volume (E_CORRUPT), not a volume that is not there. */
function openStore(storage: Storage, dir: string, readOnly: boolean): ReceiverStore {
  try {
    return ReceiverStore.open(storage, dir, { readOnly });
  } catch (error) {
    if (!isCowmapError(error, 'E_NOT_FOUND')) throw error;
    throw new CowmapError('E_CORRUPT', `open: the secondary in ${dir} is missing`, { cause: error });
  }
}

/** Why the store is not this volume's consistent secondary, or null. */
function identityProblem(store: ReceiverStore, identity: ReplicaIdentity): string | null {
  const status = store.status();
  if (status.identity === null || status.completedCycle === null) return 'it was never claimed (no cycle 0)';
  if (!Buffer.from(status.identity.volumeId).equals(Buffer.from(identity.volumeId)))
    return 'it belongs to another volume';
  if (status.identity.regions !== identity.regions || status.identity.regionSize !== identity.regionSize)
    return `geometry ${status.identity.regions} x ${status.identity.regionSize}, the volume has ${identity.regions} x ${identity.regionSize}`;
  if (status.exportSize !== exportSizeOf(identity)) return `an export of ${status.exportSize} bytes`;
  return null;
}
