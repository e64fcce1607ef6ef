// The cycle benchmark's repetitions. Each dirties 1% of the regions at random
// (seeded, new regions every repetition) through writeRegion while idle, untimed;
// then the contenders run in rotating order, each after a drop of the page cache
// when the machine allows it: ours (one cycle as `cowmap cycle` runs it,
// impl/runCycle.ts, its bytes counted through CountingStorage and checked), rsync
// to a replica that holds the previous repetition's image, and a plain copy of the
// whole image. Then the secondary is read back: it holds the primary at the swap.

import { copyFileSync, closeSync, openSync, readSync } from 'node:fs';
import type { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { bytesEqual } from '../impl/checksum.ts';
import { runCycle } from '../impl/runCycle.ts';
import type { CountingStorage, IoCounts } from '../harness/storage/countingStorage.ts';
import { type CycleExpectedIo, cycleExpectedIo, ioMismatches } from './cycleExpectedIo.ts';
import { dirtyContent, pickRegions } from './dirty.ts';
import type { Log } from './report.ts';
import { rotated } from './rotation.ts';
import { type RsyncRun, runRsync } from './rsyncRun.ts';
import { emptySeries } from './series.ts';
import { timeSeconds } from './stats.ts';
import { dropCaches, syncFile } from './system.ts';

export interface CycleConfig {
  readonly root: string;
  readonly regions: number;
  readonly regionSize: number;
  readonly dirtyFraction: number;
  readonly repetitions: number;
  readonly seed: number;
  readonly rsync: boolean;
  /** Drop the page cache before each contender (when the machine allows it). */
  readonly cold: boolean;
}

/** The files the contenders write: the volume's secondary image, the rsync replica, the plain copy. */
export interface CycleFiles {
  readonly primaryPath: string;
  readonly imagePath: string;
  readonly rsyncReplica: string;
  readonly copyPath: string;
}

export interface CycleContext {
  readonly config: CycleConfig;
  readonly volume: ReplicatedVolume;
  readonly storage: CountingStorage;
  readonly files: CycleFiles;
  /** Whether the page cache is dropped before each contender. */
  readonly cold: boolean;
  readonly dirtyCount: number;
}

type Contender = 'ours' | 'rsync' | 'copy';
const contenders: readonly Contender[] = ['ours', 'rsync', 'copy'];

function readRegionOf(path: string, region: number, regionSize: number): Uint8Array {
  const buffer = new Uint8Array(regionSize);
  const fd = openSync(path, 'r');
  try {
    const count = readSync(fd, buffer, 0, regionSize, region * regionSize);
    if (count !== regionSize) throw new Error(`short read of region ${region} of ${path}`);
  } finally {
    closeSync(fd);
  }
  return buffer;
}

export class CycleRepetitions {
  readonly series = {
    ...emptySeries(
      'oursSeconds',
      'rsyncSeconds',
      'copySeconds',
      'oursBytesRead',
      'oursBytesWritten',
      'oursSyncCalls',
      'oursMetadataBytesWritten',
    ),
    rsyncSyscallBytesRead: [] as (number | null)[],
    rsyncSyscallBytesWritten: [] as (number | null)[],
    rsyncLiteralBytes: [] as (number | null)[],
  };
  readonly bytesFailures: string[] = [];
  readonly contentFailures: string[] = [];
  readonly rsyncFailures: string[] = [];
  /** What the last repetition's cycle had to move, and what it did. */
  lastExpected: CycleExpectedIo | null = null;
  lastCounts: IoCounts | null = null;
  lastBatches = 0;

  constructor(
    private readonly context: CycleContext,
    private readonly log: Log,
  ) {}

  run(repetition: number): void {
    const { config, volume, cold } = this.context;
    const repetitionSeed = config.seed * 1_000 + repetition + 1;
    const dirty = pickRegions(config.regions, this.context.dirtyCount, repetitionSeed);
    const content = dirtyContent(dirty, config.regionSize, repetitionSeed);
    for (let index = 0; index < dirty.length; index++) volume.writeRegion(dirty[index]!, content[index]!);
    let oursSeconds = 0;
    let copySeconds = 0;
    let rsyncRun: RsyncRun | null = null;
    for (const contender of rotated(contenders, repetition)) {
      if (cold) dropCaches();
      if (contender === 'ours') oursSeconds = this.runOurs(repetition, dirty);
      else if (contender === 'rsync') rsyncRun = config.rsync ? this.runRsync(repetition) : null;
      else copySeconds = this.runCopy();
    }
    this.checkContent(repetition, dirty, content);
    this.series.oursSeconds.push(oursSeconds);
    this.series.copySeconds.push(copySeconds);
    if (rsyncRun !== null) {
      this.series.rsyncSeconds.push(rsyncRun.seconds);
      this.series.rsyncSyscallBytesRead.push(rsyncRun.syscallBytesRead);
      this.series.rsyncSyscallBytesWritten.push(rsyncRun.syscallBytesWritten);
      this.series.rsyncLiteralBytes.push(rsyncRun.literalBytes);
    }
    this.log(
      `  cycle repetition ${repetition + 1}/${config.repetitions}: ${dirty.length} dirty regions; ` +
        `ours ${oursSeconds.toFixed(3)} s, rsync ${rsyncRun === null ? '-' : rsyncRun.seconds.toFixed(3)} s, ` +
        `copy ${copySeconds.toFixed(3)} s${cold ? ' (cold cache)' : ' (warm cache)'}`,
    );
  }

  /** One cycle, timed, its I/O counted and checked against what the dirty regions need. */
  private runOurs(repetition: number, dirty: readonly number[]): number {
    const { storage, volume, config } = this.context;
    storage.take();
    let sent: readonly number[] = [];
    let batches = 0;
    const seconds = timeSeconds(() => {
      ({ regions: sent, batches } = runCycle(volume));
    });
    const counts = storage.take();
    const expected = cycleExpectedIo(dirty, config.regionSize);
    this.lastCounts = counts;
    this.lastExpected = expected;
    this.lastBatches = batches;
    const failures: string[] = [];
    if (sent.length !== dirty.length || sent.some((region, index) => region !== dirty[index]))
      failures.push(`the cycle sent ${sent.length} regions, ${dirty.length} were dirtied`);
    if (batches !== expected.batches) failures.push(`${batches} batches of transfers for ${dirty.length} regions`);
    failures.push(...ioMismatches(counts, expected));
    this.bytesFailures.push(...failures.map((failure) => `repetition ${repetition}: ${failure}`));
    this.series.oursBytesRead.push(counts.bytesRead);
    this.series.oursBytesWritten.push(counts.bytesWritten);
    this.series.oursSyncCalls.push(counts.syncCalls);
    this.series.oursMetadataBytesWritten.push(counts.bytesWritten - dirty.length * config.regionSize);
    return seconds;
  }

  private runRsync(repetition: number): RsyncRun {
    const run = runRsync(this.context.files.primaryPath, this.context.files.rsyncReplica);
    if (run.status !== 0)
      this.rsyncFailures.push(`repetition ${repetition}: rsync exited ${run.status}: ${run.stderr}`);
    return run;
  }

  private runCopy(): number {
    const { primaryPath, copyPath } = this.context.files;
    return timeSeconds(() => {
      copyFileSync(primaryPath, copyPath);
      syncFile(copyPath);
    });
  }

  /** The replica holds P@swap for every dirty region (nothing was written during the cycle). */
  private checkContent(repetition: number, dirty: readonly number[], content: readonly Uint8Array[]): void {
    const { files, config } = this.context;
    for (let index = 0; index < dirty.length; index++) {
      const region = dirty[index]!;
      const image = readRegionOf(files.imagePath, region, config.regionSize);
      const primary = readRegionOf(files.primaryPath, region, config.regionSize);
      if (!bytesEqual(image, content[index]!) || !bytesEqual(primary, content[index]!)) {
        this.contentFailures.push(
          `repetition ${repetition}: region ${region}: the secondary does not hold the primary at the swap`,
        );
      }
    }
  }
}
