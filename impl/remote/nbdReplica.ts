// The secondary as an NBD export on another machine (docs/remote.md): S is the export's
// first regions * regionSize bytes, the control block (impl/remote/controlBlock.ts) the
// 4096 bytes after them. The replica is synchronous like every Replica: its NBD client
// runs in a worker thread (impl/remote/workerLink.ts).
//
// The wire sequence of a batch of transfers: the cycle's start block when this
// connection has not sent it yet, the regions' WRITEs (adjacent regions merged, many in
// flight), every reply, the block (N, sending, k + 1), its reply, FLUSH. Only when the
// FLUSH returned do the regions count as sent: then their digests are written to
// DIR/remote-digests and synced, and writeRegions returns. confirmCycle: a READ of the
// control block judged again (an export rewound in place), (N, complete), its reply, FLUSH. A fault retries the whole batch on a new connection within the
// retry budget (impl/remote/linkSession.ts); every connect checks the export's size,
// identity and staleness (impl/remote/farProgress.ts) before anything is written.
// Nothing connects at open: a primary keeps taking writes while its secondary is away.

import { assert } from '../assert.ts';
import { crc32 } from '../checksum.ts';
import { DigestTable, digestTableSize } from '../digestTable.ts';
import { CowmapError, ReplicaLinkError } from '../errors.ts';
import { volumeSize } from '../geometry.ts';
import { fileNames, volumePath } from '../layout.ts';
import type { DigestPageProblem, ReadRegionOptions, Replica, ReplicaIdentity } from '../replica.ts';
import type { LinkStatus } from './linkStatus.ts';
import type { Storage } from '../storage.ts';
import {
  type ControlBlock,
  type ControlState,
  controlBlockSize,
  controlIdentityProblem,
  controlOffsetOf,
  type DecodedControl,
  decodeControlBlock,
  encodeControlBlock,
  newControlWriter,
} from './controlBlock.ts';
import { ConfirmedRegions } from './confirmedRegions.ts';
import {
  type FarProgress,
  type FarVerdict,
  judgeFar,
  lostCompletedError,
  lostCompletion,
  lostSentError,
} from './farProgress.ts';
import { LinkSession } from './linkSession.ts';
import { linkOptionsWith } from './linkOptions.ts';
import type { NbdReplicaOpenOptions, NbdReplicaOptions, OpenedAt } from './nbdReplicaOptions.ts';
import { runWrites } from './regionRuns.ts';
import { removeCreatedFile } from './removeCreatedFile.ts';
import type { RemoteLink, RemoteWrite } from './remoteLink.ts';
import { workerLinkFactory } from './workerLink.ts';

export class NbdReplica implements Replica {
  readonly regions: number;
  readonly regionSize: number;
  private readonly identity: ReplicaIdentity;
  private readonly session: LinkSession;
  private readonly digests: DigestTable;
  private progress: FarProgress;
  /** The cycle running at open (its swap time is unknown), until cycleRunning hears it. */
  private resumedCycle: number | null;
  private runningSwapTimeMs = 0;
  private lastCompletedSwapTimeMs = 0;
  /** The connection on which the running cycle's start block went, -1 none. */
  private startSentOn = -1;
  /** A connect found that the far side lost regions of the running cycle it had confirmed. */
  private lostSent = false;
  /** The seq of this open's last control write (farProgress.ts): never reused. */
  private seqLast = 0;
  /** Counts judgements of the far block: a confirmation tells whether its connect just judged. */
  private judgements = 0;
  private readonly confirmed = new ConfirmedRegions();

  private constructor(
    identity: ReplicaIdentity,
    url: string,
    digests: DigestTable,
    at: OpenedAt,
    options: NbdReplicaOptions,
  ) {
    this.identity = identity;
    this.regions = identity.regions;
    this.regionSize = identity.regionSize;
    this.digests = digests;
    const linkOptions = linkOptionsWith(options.link);
    this.session = new LinkSession(url, identity, linkOptions, options.linkFactory ?? workerLinkFactory);
    this.session.judge = (decoded, link) => this.judge(decoded, link);
    const fresh = { confirmedBatches: 0, writer: newControlWriter(), floor: 0, completedFloor: null };
    this.progress = at.replicating
      ? { ...fresh, lastCompleted: at.cycle - 1, running: at.cycle }
      : { ...fresh, lastCompleted: at.cycle, running: null };
    this.resumedCycle = at.replicating ? at.cycle : null;
  }

  /**
   * Claims a fresh export for a new volume (docs/remote.md, "init"): its size must be
   * exportSizeOf(geometry) and its control region all zero, else E_CORRUPT; then the
   * block (0, sending), WRITE_ZEROES over the image, (0, complete), FLUSH. Makes
   * DIR/remote-digests (E_EXISTS when there); removes it again when the claim fails
   * (E_IO for a far side that stays unreachable within the retry budget).
   */
  static create(
    storage: Storage,
    dir: string,
    url: string,
    identity: ReplicaIdentity,
    options: NbdReplicaOptions = {},
  ): NbdReplica {
    const path = volumePath(dir, fileNames.remoteDigests);
    if (storage.exists(path)) throw new CowmapError('E_EXISTS', `create: ${path} exists`);
    const file = storage.open(path, { create: true });
    try {
      file.truncate(digestTableSize(identity.regions));
      file.sync();
      const digests = DigestTable.load(file, identity.regions, identity.regionSize);
      const replica = new NbdReplica(identity, url, digests, { cycle: 0, replicating: false }, options);
      replica.claim();
      return replica;
    } catch (error) {
      removeCreatedFile(storage, file);
      throw error;
    }
  }

  /** The replica of an existing volume: DIR/remote-digests opened; the far side is not contacted. */
  static open(
    storage: Storage,
    dir: string,
    url: string,
    identity: ReplicaIdentity,
    at: OpenedAt,
    options: NbdReplicaOpenOptions = {},
  ): NbdReplica {
    const path = volumePath(dir, fileNames.remoteDigests);
    if (!storage.exists(path)) throw new CowmapError('E_CORRUPT', `open: ${path} is missing`);
    const readOnly = options.readOnly === true;
    const file = storage.open(path, { create: false, readOnly });
    try {
      if (options.syncAtOpen === true && !readOnly) file.sync();
      const digests = DigestTable.load(file, identity.regions, identity.regionSize);
      const replica = new NbdReplica(identity, url, digests, at, options);
      replica.session.writes = !readOnly;
      // A writable open will send: its link gets ready meanwhile (no connection: open never needs the far side).
      if (!readOnly) replica.session.prepare();
      return replica;
    } catch (error) {
      file.close();
      throw error;
    }
  }

  get url(): string {
    return this.session.url;
  }

  /** Findings about S name the export by its URL. */
  get imagePath(): string {
    return this.session.url;
  }

  get digestsPath(): string {
    return this.digests.file.path;
  }

  setPending(pending: (region: number) => boolean): void {
    this.digests.pending = pending;
  }

  cycleRunning(cycle: number): void {
    this.runningSwapTimeMs = cycle === this.resumedCycle ? 0 : Date.now();
    this.resumedCycle = null;
    if (this.progress.lastCompleted !== cycle - 1) this.progress.completedFloor = null;
    this.progress = { ...this.progress, lastCompleted: cycle - 1, running: cycle, confirmedBatches: 0 };
    this.confirmed.cycleRunning();
    this.startSentOn = -1;
    this.lostSent = false;
  }

  writeRegions(regions: readonly number[], contentOf: (region: number) => Uint8Array): void {
    if (regions.length === 0) return;
    const cycle = this.runningCycle('writeRegions');
    const pages = this.digests.prepare(regions, `transfer(region ${regions[0]})`);
    const contents = new Map<number, Uint8Array>();
    const crcs = new Map<number, number>();
    for (const region of regions) {
      const data = contentOf(region);
      contents.set(region, data);
      crcs.set(region, crc32(data));
    }
    this.confirmed.batchSending(crcs);
    this.session.run(`transfer of ${contents.size} region(s) of cycle ${cycle} (first ${regions[0]})`, (link) => {
      // Built per attempt: a new connection may have another maximum payload.
      const writes = runWrites(contents, this.regionSize, this.session.info.payloadMax);
      link.writeBatch([...this.startWrites(cycle), ...writes]);
      this.startSentOn = this.session.connection;
      // After every data reply: a far side holding this block holds the batch (farProgress.ts).
      link.writeBatch([this.controlWrite({ cycle, state: 'sending', batch: this.progress.confirmedBatches + 1 })]);
      link.flush();
      this.progress.floor = this.seqLast;
    });
    this.confirmed.batchConfirmed();
    // A lost-regions verdict at a reconnect reset the count to 0; the batch just sent counts from there.
    this.progress.confirmedBatches++;
    this.digests.update(pages, crcs);
    this.digests.sync();
  }

  confirmCycle(cycle: number): void {
    assert(this.progress.running === cycle, `confirmCycle(${cycle}) while cycle ${this.progress.running} runs`);
    this.throwIfLostSent(cycle);
    const judgedBefore = this.judgements;
    const dataFloor = this.progress.floor;
    this.session.run(`confirmation of cycle ${cycle}`, (link) => {
      // Judged on every attempt, even on a connection judged before: an export rewound in place keeps it.
      if (this.judgements === judgedBefore) this.judge(this.readControl(link), link);
      this.throwIfLostSent(cycle); // found by this attempt's judgement
      const batch = this.progress.confirmedBatches;
      // Two writes of the same block must not be in flight together: a server may apply them in either order.
      const start = this.startWrites(cycle);
      if (start.length > 0) link.writeBatch(start);
      link.writeBatch([this.controlWrite({ cycle, state: 'complete', batch })]);
      this.startSentOn = this.session.connection;
      link.flush();
      this.progress.floor = this.seqLast;
    });
    this.lastCompletedSwapTimeMs = this.runningSwapTimeMs;
    this.session.far = { completedCycle: cycle, swapTimeMs: this.runningSwapTimeMs };
    this.confirmed.cycleCompleted();
    const completed = { lastCompleted: cycle, running: null, confirmedBatches: 0, completedFloor: dataFloor };
    this.progress = { ...this.progress, ...completed };
  }

  readRegion(region: number, options: ReadRegionOptions = {}): Uint8Array {
    const bytes = this.session.run(`read(region ${region})`, (link) =>
      link.read(region * this.regionSize, this.regionSize),
    );
    if (options.verify === true && crc32(bytes) !== this.digests.entry(region, `read(region ${region})`)) {
      throw new CowmapError(
        'E_CORRUPT',
        `read(region ${region}): ${this.url} offset ${region * this.regionSize} region ${region}: ` +
          `the region does not match its digest in ${this.digestsPath}`,
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

  digestPageProblems(): DigestPageProblem[] {
    return this.digests.rottenPages();
  }

  rewriteDigestPages(pages: readonly number[]): void {
    if (pages.length === 0) return;
    this.digests.rewritePages(pages, (region) => crc32(this.readRegion(region)));
    this.digests.sync();
  }

  readonly linkStatus = (): LinkStatus => this.session.status();

  /** One attempt: connect if needed, read the control block, write nothing; the status either way. */
  readonly probeLink = (): LinkStatus => {
    try {
      this.session.run('probe', (link) => this.noteFar(this.readControl(link)), { retryBudgetMs: 0 });
    } catch (error) {
      // The status carries the fault; a probe reports, it does not fail.
      if (!(error instanceof ReplicaLinkError)) throw error;
    }
    return this.session.status();
  };

  close(): void {
    try {
      this.session.close();
    } finally {
      this.digests.file.close();
    }
  }

  /** Create's claim: the far side must be fresh (or hold this create's own cycle 0 after a fault). */
  private claim(): void {
    this.session.judge = (decoded) => {
      if (decoded.kind === 'empty') return;
      const problem = controlIdentityProblem(decoded, this.identity);
      if (problem === null && decoded.kind === 'block' && decoded.block.cycle === 0) return; // a retry of this claim
      throw new ReplicaLinkError(
        'E_CORRUPT',
        `the secondary ${this.url} is not a fresh export: its control block is not all zeros ` +
          `(${problem ?? "it is this volume's own block, past cycle 0"}); init claims only an export it zeroes itself`,
      );
    };
    this.session.run(`init of ${this.url}`, (link) => {
      link.writeBatch([this.controlWrite({ cycle: 0, state: 'sending', batch: 0 })]);
      link.writeZeroes(0, volumeSize(this.identity));
      const dataFloor = this.seqLast;
      link.writeBatch([this.controlWrite({ cycle: 0, state: 'complete', batch: 0 })]);
      link.flush();
      this.progress.floor = this.seqLast;
      this.progress.completedFloor = dataFloor;
    });
    this.session.far = { completedCycle: 0, swapTimeMs: 0 };
    this.session.judge = (decoded, link) => this.judge(decoded, link);
  }

  /** A connect's check: this volume's export (E_CORRUPT otherwise), then staleness. */
  private judge(decoded: DecodedControl, link: RemoteLink): void {
    this.judgements++;
    const problem = controlIdentityProblem(decoded, this.identity);
    if (problem !== null)
      throw new ReplicaLinkError('E_CORRUPT', `the secondary ${this.url} is not this volume's: ${problem}`);
    this.noteFar(decoded);
    let verdict: FarVerdict = judgeFar(decoded, this.progress, this.url);
    if (verdict === 'verifyCompleted') {
      this.verifyCompleted(link);
      verdict = this.progress.running !== null && this.progress.confirmedBatches > 0 ? 'lostSent' : 'current';
    }
    if (verdict === 'lostSent') {
      this.lostSent = true;
      this.progress.confirmedBatches = 0;
    }
    if (lostCompletion(decoded, this.progress)) this.completeAgain(link);
  }

  /**
   * The far side holds all of L but our (L, sending) block came back: to `cowmap receive`, L's journal left
   * uncommitted, which the next start would drop. (L, complete) and a FLUSH go again before anything else.
   */
  private completeAgain(link: RemoteLink): void {
    const cycle = this.progress.lastCompleted;
    link.writeBatch([this.controlWrite({ cycle, state: 'complete', batch: 0 })]);
    link.flush();
    this.progress.floor = Math.max(this.progress.floor, this.seqLast);
    this.session.far = { completedCycle: cycle, swapTimeMs: this.lastCompletedSwapTimeMs };
  }

  /** Our block of L older than L's last batch (a late write, or a rewind into L): L's regions read back (farProgress.ts). */
  private verifyCompleted(link: RemoteLink): void {
    const farCrcOf = (region: number) => crc32(link.read(region * this.regionSize, this.regionSize));
    const region = this.confirmed.firstLoss(farCrcOf, (at) => this.digests.entry(at));
    if (region !== null) throw lostCompletedError(this.url, `region ${region} of cycle ${this.progress.lastCompleted}`);
  }

  private readControl(link: RemoteLink): DecodedControl {
    return decodeControlBlock(link.read(controlOffsetOf(this.identity), controlBlockSize));
  }

  private noteFar(decoded: DecodedControl): void {
    if (decoded.kind !== 'block') return;
    const { cycle, state, swapTimeMs } = decoded.block;
    const completedCycle = state === 'complete' ? cycle : cycle - 1;
    const known = completedCycle === this.progress.lastCompleted ? this.lastCompletedSwapTimeMs : 0;
    this.session.far = { completedCycle, swapTimeMs: state === 'complete' ? swapTimeMs : known };
  }

  private throwIfLostSent(cycle: number): void {
    if (!this.lostSent) return;
    this.lostSent = false;
    throw lostSentError(this.url, cycle);
  }

  /** The start block, unless this connection sent it already in this cycle. */
  private startWrites(cycle: number): RemoteWrite[] {
    if (this.startSentOn === this.session.connection) return [];
    return [this.controlWrite({ cycle, state: 'sending', batch: this.progress.confirmedBatches })];
  }

  /** The next control block of this open: a new seq (seqLast), never reused. */
  private controlWrite(fields: { cycle: number; state: ControlState; batch: number }): RemoteWrite {
    const { running, lastCompleted } = this.progress;
    const swapTimeMs =
      fields.cycle === running
        ? this.runningSwapTimeMs
        : fields.cycle === lastCompleted
          ? this.lastCompletedSwapTimeMs
          : 0;
    this.seqLast++;
    const { writer } = this.progress;
    const block: ControlBlock = { ...this.identity, ...fields, swapTimeMs, writer, seq: this.seqLast };
    return { offset: controlOffsetOf(this.identity), bytes: encodeControlBlock(block) };
  }

  private runningCycle(operation: string): number {
    assert(this.progress.running !== null, `${operation} while no cycle runs`);
    return this.progress.running;
  }
}
