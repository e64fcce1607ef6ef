// The write path benchmark's cycles (writePath.ts). Each cycle: startCycle, then
// every region written once (first writes), then again (steady state), chunk by
// chunk; each chunk is one repetition in which ours, the baseline (and, for first
// writes, the floor) write the same regions in an order that rotates. Then the
// primary and the baseline file are read back, and the cycle drained and
// completed, untimed.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { bytesEqual } from '../impl/checksum.ts';
import { entrySize as cowEntryBytes } from '../impl/cowStore.ts';
import { NodeStorage } from '../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { CountingStorage, type IoCounts } from '../harness/storage/countingStorage.ts';
import { FloorFiles } from './floorFiles.ts';
import { PlainFile } from './plainFile.ts';
import type { Log } from './report.ts';
import { rotated } from './rotation.ts';
import { SeededBytes } from './seededBytes.ts';
import { emptySeries, sum } from './series.ts';
import { timeSeconds } from './stats.ts';

export interface WritePathConfig {
  readonly root: string;
  readonly regions: number;
  readonly regionSize: number;
  /** Regions per repetition: ours and the baseline alternate chunk by chunk. */
  readonly chunkRegions: number;
  /** Cycles recorded, each one first pass and one steady pass over every region. */
  readonly cycles: number;
  readonly warmups: number;
  readonly seed: number;
}

/** The I/O of one write, as CountingStorage counts it. */
export interface PerWrite {
  readonly bytesWritten: number;
  readonly bytesRead: number;
  readonly writeCalls: number;
  readonly syncCalls: number;
}

/** A first write in a cycle: the old region read, its COW slot and entry written and synced, the data written and synced. */
export function firstWriteIo(regionSize: number): PerWrite {
  return { bytesWritten: 2 * regionSize + cowEntryBytes, bytesRead: regionSize, writeCalls: 3, syncCalls: 2 };
}

/** A steady-state write: the data and its sync only. */
export function steadyWriteIo(regionSize: number): PerWrite {
  return { bytesWritten: regionSize, bytesRead: 0, writeCalls: 1, syncCalls: 1 };
}

/** Distinct data sets the passes rotate through (so consecutive passes write new bytes). */
const dataSetCount = 4;
const perWriteFields = ['bytesWritten', 'bytesRead', 'writeCalls', 'syncCalls'] as const;
type Contender = 'ours' | 'baseline' | 'floor';

export class WritePathRepetitions {
  readonly series = emptySeries(
    'oursFirstSeconds',
    'baselineFirstSeconds',
    'floorFirstSeconds',
    'oursSteadySeconds',
    'baselineSteadySeconds',
  );
  readonly countFailures: string[] = [];
  readonly contentFailures: string[] = [];
  private readonly storage = new CountingStorage(new NodeStorage());
  private readonly volume: ReplicatedVolume;
  private readonly plain: PlainFile;
  private readonly floor: FloorFiles;
  private readonly dataSets: Uint8Array[];
  private readonly chunkCount: number;
  /** Which contender goes first in the next repetition. */
  private turn = 0;

  constructor(
    private readonly config: WritePathConfig,
    private readonly log: Log,
  ) {
    const { regions, regionSize, chunkRegions } = config;
    if (regions % chunkRegions !== 0) throw new RangeError('write path: regions must be a multiple of chunkRegions');
    this.chunkCount = regions / chunkRegions;
    const baselineDir = join(config.root, 'write-baseline');
    mkdirSync(baselineDir);
    this.volume = ReplicatedVolume.create(this.storage, join(config.root, 'write-volume'), { regions, regionSize });
    this.plain = new PlainFile(join(baselineDir, 'plain'), regions * regionSize);
    this.floor = new FloorFiles(baselineDir, regions, regionSize);
    this.storage.take();
    const bytes = new SeededBytes(config.seed);
    this.dataSets = Array.from({ length: dataSetCount }, () => bytes.next(regions * regionSize));
  }

  private dataOf(pass: number, region: number): Uint8Array {
    const { regionSize } = this.config;
    return this.dataSets[pass % dataSetCount]!.subarray(region * regionSize, (region + 1) * regionSize);
  }

  /** One cycle; its chunks' seconds recorded unless it is a warm-up. */
  runCycle(cycle: number): void {
    const { config, volume, series, chunkCount } = this;
    const recorded = cycle >= config.warmups;
    const firstPass = 2 * cycle;
    const steadyPass = 2 * cycle + 1;
    volume.startCycle();
    if (volume.nextRegions().length !== 0 || volume.preservedRegions().length !== 0) {
      this.countFailures.push(`cycle ${cycle}: the cycle did not start with X clear and W empty`);
    }
    // First writes of the cycle (COW slot + entry + sync, data + sync; the bit in memory), chunk by chunk.
    const firstIo = firstWriteIo(config.regionSize);
    for (let chunk = 0; chunk < chunkCount; chunk++) {
      const seconds = this.repetition(firstPass, chunk, `cycle ${cycle} first writes`, firstIo, true);
      if (!recorded) continue;
      series.oursFirstSeconds.push(seconds.ours);
      series.baselineFirstSeconds.push(seconds.baseline);
      series.floorFirstSeconds.push(seconds.floor);
    }
    // Steady state: every region's bit is set and its copy made: the data and its sync only.
    const steadyIo = steadyWriteIo(config.regionSize);
    for (let chunk = 0; chunk < chunkCount; chunk++) {
      const seconds = this.repetition(steadyPass, chunk, `cycle ${cycle} steady writes`, steadyIo, false);
      if (!recorded) continue;
      series.oursSteadySeconds.push(seconds.ours);
      series.baselineSteadySeconds.push(seconds.baseline);
    }
    this.checkContent(cycle, steadyPass);
    // Drain and complete the cycle, untimed: the next one starts with X clear and W empty.
    volume.transferRegions(volume.currentRegions());
    volume.completeCycle();
    this.logCycle(cycle);
  }

  close(): void {
    this.volume.close();
    this.plain.close();
    this.floor.close();
  }

  /**
   * One repetition: ours and the baseline (and, for first writes, the floor) write
   * the same chunk of regions, in an order that rotates. Returns their seconds.
   */
  private repetition(pass: number, chunk: number, what: string, perWrite: PerWrite, withFloor: boolean) {
    const { chunkRegions } = this.config;
    const first = chunk * chunkRegions;
    const seconds: Record<Contender, number> = { ours: 0, baseline: 0, floor: 0 };
    const writeChunk = (write: (region: number, data: Uint8Array) => void) =>
      timeSeconds(() => {
        for (let region = first; region < first + chunkRegions; region++) write(region, this.dataOf(pass, region));
      });
    const runners: Record<Contender, () => void> = {
      ours: () => {
        this.storage.take();
        seconds.ours = writeChunk((region, data) => this.volume.writeRegion(region, data));
        this.expectCounts(`${what}, chunk ${chunk}`, this.storage.take(), perWrite);
      },
      baseline: () => {
        seconds.baseline = writeChunk((region, data) => this.plain.writeRegion(region, data));
      },
      floor: () => {
        seconds.floor = writeChunk((region, data) => this.floor.firstWrite(region, data));
      },
    };
    const order: Contender[] = withFloor ? ['ours', 'baseline', 'floor'] : ['ours', 'baseline'];
    for (const contender of rotated(order, this.turn++)) runners[contender]();
    return seconds;
  }

  private expectCounts(what: string, counts: IoCounts, perWrite: PerWrite): void {
    for (const field of perWriteFields) {
      const expected = perWrite[field] * this.config.chunkRegions;
      if (counts[field] !== expected)
        this.countFailures.push(`${what}: ${field} ${counts[field]}, expected ${expected}`);
    }
  }

  /** What was written is there: the primary and the plain file hold the last pass. */
  private checkContent(cycle: number, pass: number): void {
    for (let region = 0; region < this.config.regions; region++) {
      if (!bytesEqual(this.volume.readRegion(region), this.dataOf(pass, region)))
        this.contentFailures.push(`cycle ${cycle}: primary region ${region}`);
      if (!bytesEqual(this.plain.readRegion(region, this.config.regionSize), this.dataOf(pass, region)))
        this.contentFailures.push(`cycle ${cycle}: baseline region ${region}`);
    }
  }

  private logCycle(cycle: number): void {
    const { config, series, chunkCount } = this;
    if (cycle < config.warmups) {
      this.log(`  write path warm-up cycle ${cycle + 1}/${config.warmups}`);
      return;
    }
    const recent = (values: number[]) => ((sum(values.slice(-chunkCount)) / config.regions) * 1e6).toFixed(0);
    this.log(
      `  write path cycle ${cycle - config.warmups + 1}/${config.cycles}: ` +
        `first ${recent(series.oursFirstSeconds)} vs ${recent(series.baselineFirstSeconds)} us/write, ` +
        `steady ${recent(series.oursSteadySeconds)} vs ${recent(series.baselineSteadySeconds)} us/write`,
    );
  }
}
