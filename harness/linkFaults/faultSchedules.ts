// Seeded histories against a primary whose secondary is an NBD export (nbdkit file,
// qemu-nbd or `cowmap receive`) behind the fault proxy (faultProxy.ts, in its own
// process: proxyProcess.ts): writes to P,
// cycles run with retries (impl/runCycle.ts, or small batches of transferRegions so
// that a cycle has several FLUSHes; the replica's own retry budget, then the
// history's attempts), faults from a seeded schedule (schedule.ts). What must
// hold (docs/protocol.md section 10):
//
//   - after every cycle that COMPLETED, the far side's durable image (its files as
//     of the last FLUSH that succeeded) equals P@swap of that cycle byte for byte,
//     and its control block says that cycle, complete;
//   - a cycle that did not complete left the primary usable (its reads are P) and,
//     once the faults stop, a later attempt completes;
//   - with `cowmap receive` behind the proxy, after every step the consistent image
//     (of the live files, and of the durable ones) is P@swap of the last completed
//     cycle, or of the running cycle when the far side took its complete signal
//     but the primary did not see the FLUSH after it;
//   - E_CORRUPT (the far side lost completed cycles) only after the schedule put an
//     older image back (restoreOlder), never from faults that lose nothing confirmed;
//     after it the history ends (the far side is to be rebuilt).
//
// A history is replayed from its seed alone (the schedule and the steps are drawn
// from it); timing faults may land a request or two apart between runs.

import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type CowmapError, ReplicaLinkError } from '../../impl/errors.ts';
import { volumeSize, type Geometry } from '../../impl/geometry.ts';
import { exportSizeOf } from '../../impl/remote/controlBlock.ts';
import type { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { runCycle } from '../../impl/runCycle.ts';
import { Prng } from '../prng.ts';
import type { FarSideSpec } from './farSide.ts';
import { snapshotNames, type ProxyCounts } from './faultProxy.ts';
import { type FarImage, firstDifferentRegion, readPlainExport, readReceiverConsistent } from './farImages.ts';
import { nbdkitFileFarSide } from './nbdkitFarSide.ts';
import { qemuNbdFarSide } from './qemuFarSide.ts';
import type { ProxyProcess } from './proxyProcess.ts';
import { describeFault, drawSchedule, type ScheduleShape } from './schedule.ts';

export type FarKind = 'nbdkit' | 'qemu' | 'receive';

/** Makes the primary in `dir` with its secondary at `url` (the real replica, or a planted bug's variant). */
export type PrimaryFactory = (dir: string, url: string, geometry: Geometry) => ReplicatedVolume;

export interface HistoryConfig {
  readonly seed: number;
  readonly farKind: FarKind;
  /** A fresh directory for this history's files. */
  readonly dir: string;
  readonly proxy: ProxyProcess;
  readonly geometry: Geometry;
  readonly steps: number;
  readonly shape: ScheduleShape;
  /** runCycle calls per cycle step; and at the calm end, before a cycle must have completed. */
  readonly cycleAttemptsMax: number;
  readonly makePrimary: PrimaryFactory;
  /** bin/cowmap.js, for the receive far side. */
  readonly cowmapScript: string;
}

export interface HistoryOutcome {
  readonly seed: number;
  readonly farKind: FarKind;
  readonly faults: readonly string[];
  readonly counts: ProxyCounts | null;
  /** runCycle calls that ended in ReplicaLinkError (E_IO): the history's retries. */
  readonly linkErrors: number;
  /** ReplicaLinkErrors with lostSent: the far side lost confirmed regions, all of C went again. */
  readonly lostSent: number;
  readonly cyclesCompleted: number;
  /** The primary refused an older image with E_CORRUPT (after a restoreOlder). */
  readonly olderImageRefused: boolean;
  /** Steps after which the consistent image was the running cycle's (its complete signal taken, not confirmed). */
  readonly consistentAhead: number;
  /** Why the history failed, null when every check held. */
  readonly failure: string | null;
}

/** The history's own view: P as written, P@swap of the running cycle and of the last completed one. */
interface Expected {
  primary: Uint8Array;
  swap: Uint8Array | null;
  completed: Uint8Array;
}

class HistoryFailure extends Error {}

function farSpecOf(config: HistoryConfig, socketDir: string): FarSideSpec & { readonly statePath: string } {
  const exportSize = exportSizeOf(config.geometry);
  if (config.farKind !== 'receive') {
    const spec = (config.farKind === 'nbdkit' ? nbdkitFileFarSide : qemuNbdFarSide)(socketDir, exportSize);
    return { ...spec, statePath: spec.imagePath };
  }
  const storeDir = join(socketDir, 'receiver');
  const socketPath = join(socketDir, 'far.sock');
  const { regions, regionSize } = config.geometry;
  return {
    command: process.execPath,
    args: [
      config.cowmapScript,
      'receive',
      storeDir,
      '--socket',
      socketPath,
      '--regions',
      `${regions}`,
      '--region-size',
      `${regionSize}`,
    ],
    socketPath,
    statePaths: [storeDir],
    snapshotDir: join(socketDir, 'snapshots'),
    statePath: storeDir,
  };
}

/** Seeded writes of 1 to 3 sector-aligned pieces, each inside one region. */
function drawWrites(prng: Prng, geometry: Geometry): { offset: number; bytes: Uint8Array }[] {
  const sector = 512;
  const sectorsPerRegion = geometry.regionSize / sector;
  const count = 1 + prng.nextInt(3);
  const writes: { offset: number; bytes: Uint8Array }[] = [];
  for (let index = 0; index < count; index++) {
    const region = prng.nextInt(geometry.regions);
    const first = prng.nextInt(sectorsPerRegion);
    const sectors = 1 + prng.nextInt(sectorsPerRegion - first);
    const bytes = new Uint8Array(sectors * sector);
    for (let at = 0; at < bytes.length; at += 4) new DataView(bytes.buffer).setUint32(at, prng.nextUint32());
    writes.push({ offset: region * geometry.regionSize + first * sector, bytes });
  }
  return writes;
}

class History {
  readonly expected: Expected;
  linkErrors = 0;
  lostSent = 0;
  cyclesCompleted = 0;
  olderImageRefused = false;
  consistentAhead = 0;
  /** The last link error's message, for a history that ends without completing. */
  lastLinkError = '';
  readonly log: string[] = [];

  constructor(
    readonly config: HistoryConfig,
    readonly volume: ReplicatedVolume,
    readonly far: FarSideSpec & { readonly statePath: string },
  ) {
    const zeros = new Uint8Array(volumeSize(config.geometry));
    this.expected = { primary: zeros.slice(), swap: null, completed: zeros };
  }

  fail(message: string): never {
    throw new HistoryFailure(`${message} (steps: ${this.log.slice(-6).join('; ')})`);
  }

  write(prng: Prng): void {
    for (const { offset, bytes } of drawWrites(prng, this.config.geometry)) {
      this.volume.write(offset, bytes);
      this.expected.primary.set(bytes, offset);
    }
    this.log.push('write');
  }

  /**
   * One attempt at the cycle (the swap first when idle): runCycle, or with
   * `batchRegions`, the unsent regions of C in batches of that many (transferRegions
   * each, so several FLUSHes a cycle, as a large volume's cycle makes), then
   * completeCycle. True when the cycle completed.
   */
  async cycleAttempt(proxy: ProxyProcess, batchRegions: number | null): Promise<boolean> {
    if (this.volume.phase === 'idle') {
      this.volume.startCycle();
      this.expected.swap = this.expected.primary.slice();
    }
    try {
      if (batchRegions === null) runCycle(this.volume);
      else {
        const unsent = this.volume.unsentRegions();
        for (let start = 0; start < unsent.length; start += batchRegions)
          this.volume.transferRegions(unsent.slice(start, start + batchRegions));
        this.volume.completeCycle();
      }
    } catch (error) {
      if (!(error instanceof ReplicaLinkError)) throw error;
      this.log.push(`cycle ${this.volume.cycle}: ${error.code}${error.lostSent ? ' lostSent' : ''}`);
      this.lastLinkError = error.message;
      if (error.code === 'E_CORRUPT') await this.refused(proxy, error);
      this.linkErrors++;
      if (error.lostSent) this.lostSent++;
      return false;
    }
    this.expected.completed = this.expected.swap!;
    this.expected.swap = null;
    this.cyclesCompleted++;
    this.log.push(`cycle ${this.volume.cycle} completed`);
    this.checkCompleted();
    return true;
  }

  /** E_CORRUPT is right only when the far side was put back to an older image. */
  private async refused(proxy: ProxyProcess, error: CowmapError): Promise<void> {
    const { counts } = await proxy.counts();
    if (counts.faults.restoreOlder === 0) this.fail(`E_CORRUPT with no older image put back: ${error.message}`);
    this.olderImageRefused = true;
  }

  private durableImage(): FarImage {
    const imageBytes = volumeSize(this.config.geometry);
    const durable = join(this.far.snapshotDir, snapshotNames.durable, basename(this.far.statePath));
    if (this.config.farKind !== 'receive') return readPlainExport(durable, imageBytes);
    return readReceiverConsistent(durable, this.config.dir, imageBytes);
  }

  private compare(what: string, far: FarImage, expected: Uint8Array, cycle: number): string | null {
    const region = firstDifferentRegion(far.image, expected, this.config.geometry.regionSize);
    if (region !== null) return `${what}: region ${region} differs from P@swap of cycle ${cycle}`;
    if (far.control === null || far.control.cycle !== cycle || far.control.state !== 'complete')
      return `${what}: control block ${JSON.stringify(far.control && { ...far.control, volumeId: undefined })}, not cycle ${cycle} complete`;
    return null;
  }

  /** After a completion: the far side's durable image is P@swap of the cycle, its control block the cycle's end. */
  private checkCompleted(): void {
    const problem = this.compare('durable far image', this.durableImage(), this.expected.completed, this.volume.cycle);
    if (problem !== null) this.fail(problem);
  }

  /** With a receiver: its consistent image, live and durable, is P@swap of the last completed cycle (or of the running one). */
  checkConsistent(): void {
    // A far side put back to an older image holds an older point: the primary refused it, which is the check.
    if (this.config.farKind !== 'receive' || this.olderImageRefused) return;
    const imageBytes = volumeSize(this.config.geometry);
    const images = {
      live: readReceiverConsistent(this.far.statePath, this.config.dir, imageBytes),
      durable: this.durableImage(),
    };
    const completedCycle = this.volume.phase === 'idle' ? this.volume.cycle : this.volume.cycle - 1;
    for (const [name, image] of Object.entries(images)) {
      const problem = this.compare(`${name} consistent image`, image, this.expected.completed, completedCycle);
      if (problem === null) continue;
      const swap = this.expected.swap;
      if (swap !== null && this.compare(name, image, swap, this.volume.cycle) === null) {
        this.consistentAhead++;
        continue;
      }
      this.fail(problem);
    }
  }

  /** The primary is usable: reads give P as written. */
  checkPrimary(): void {
    const bytes = this.volume.read(0, this.expected.primary.length);
    const region = firstDifferentRegion(bytes, this.expected.primary, this.config.geometry.regionSize);
    if (region !== null) this.fail(`the primary's region ${region} is not what was written`);
  }
}

async function runSteps(history: History, config: HistoryConfig): Promise<void> {
  const prng = new Prng(config.seed * 2 + 1);
  // Its own stream, so that the steps of a seed do not depend on how its cycles are batched.
  const batching = new Prng(config.seed * 3 + 2);
  for (let step = 0; step < config.steps && !history.olderImageRefused; step++) {
    if (prng.nextInt(100) < 55) history.write(prng);
    else {
      for (let attempt = 0; attempt < config.cycleAttemptsMax && !history.olderImageRefused; attempt++) {
        const batchRegions = batching.nextBool() ? null : 1 + batching.nextInt(3);
        if (await history.cycleAttempt(config.proxy, batchRegions)) break;
      }
    }
    history.checkPrimary();
    history.checkConsistent();
  }
}

/** The calm end: no more faults; the running cycle, then one more, must complete. */
async function calmEnd(history: History, config: HistoryConfig): Promise<void> {
  await config.proxy.calm();
  for (let cycle = 0; cycle < 2 && !history.olderImageRefused; cycle++) {
    let completed = false;
    for (let attempt = 0; attempt < config.cycleAttemptsMax && !completed && !history.olderImageRefused; attempt++)
      completed = await history.cycleAttempt(config.proxy, null);
    if (!completed && !history.olderImageRefused)
      history.fail(
        `no cycle completed in ${config.cycleAttemptsMax} attempts once the faults stopped; the last error: ` +
          history.lastLinkError,
      );
    history.checkPrimary();
    history.checkConsistent();
    if (cycle === 0) history.write(new Prng(config.seed + 7));
  }
}

/** One seeded history: a fresh far side behind the proxy, the primary created through it, then the schedule. */
export async function runHistory(config: HistoryConfig): Promise<HistoryOutcome> {
  const schedule = drawSchedule(config.seed, config.shape);
  const farDir = join(config.dir, 'far');
  mkdirSync(farDir, { recursive: true });
  const far = farSpecOf(config, farDir);
  const listenPath = join(config.dir, 'proxy.sock');
  await config.proxy.begin(far, { kind: 'unix', path: listenPath });
  let volume: ReplicatedVolume | null = null;
  let history: History | null = null;
  let failure: string | null = null;
  let counts: ProxyCounts | null = null;
  try {
    volume = config.makePrimary(join(config.dir, 'primary'), `nbd+unix:///?socket=${listenPath}`, config.geometry);
    history = new History(config, volume, far);
    await config.proxy.arm(schedule);
    await runSteps(history, config);
    await calmEnd(history, config);
  } catch (error) {
    failure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } finally {
    try {
      volume?.close();
    } catch (error) {
      failure ??= `close: ${(error as Error).message}`;
    }
    const status = await config.proxy.counts().catch(() => null);
    counts = status?.counts ?? null;
    if (failure !== null && status?.farProblem) failure += `; far side: ${status.farProblem}`;
    if (failure !== null && status?.farCrash) failure += `; the far side crashed (started again): ${status.farCrash}`;
    await config.proxy.end();
  }
  return {
    seed: config.seed,
    farKind: config.farKind,
    faults: schedule.faults.map(describeFault),
    counts,
    linkErrors: history?.linkErrors ?? 0,
    lostSent: history?.lostSent ?? 0,
    cyclesCompleted: history?.cyclesCompleted ?? 0,
    olderImageRefused: history?.olderImageRefused ?? false,
    consistentAhead: history?.consistentAhead ?? 0,
    failure,
  };
}
