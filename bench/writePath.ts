// 1. The write path on real files, 4 KiB regions, against a plain pwrite +
// fdatasync loop of the same pattern on a file of the same size on the same file
// system.
//
// Each cycle: startCycle, then every region written once (FIRST writes of the
// cycle: copy-on-write, a new next bit and the data: 5 durable calls, 2 fdatasyncs
// per write; the next bit stays in memory, implied by the durable COW entry, and
// reaches the map at completion), then every region written again (STEADY state:
// bit set, region preserved: pwrite + fdatasync of the primary, 2 durable calls,
// 1 fdatasync per write); then the cycle is drained and completed, untimed.
// First writes have a third contender, the FLOOR: the same system calls as our
// first write (pread of the old region, SHA-256, pwrite of the COW slot and its
// 64-byte entry, fdatasync, pwrite of the region, fdatasync) made straight with
// node:fs on files of their own, with none of the volume's logic: what any
// implementation of this durable order pays on this file system. The writes go in chunks
// of a few regions; each chunk is one repetition: ours writes it, the baseline
// writes the same regions of its own file, and the two alternate which goes first.
// Fine-grained pairs keep the drift of fdatasync latency (which moves by 3x over
// seconds on a virtual disk) out of the ratios. The warm-up cycle is not recorded
// (it allocates the blocks of the sparse files of both contenders).

import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { NodeStorage } from '../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { CountingStorage, type IoCounts } from './countingStorage.ts';
import { Checks, type Log, type SectionResult } from './report.ts';
import { ratios, summarize, timeSeconds } from './stats.ts';
import { SeededBytes } from './system.ts';

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

/** Distinct data sets the passes rotate through (so consecutive passes write new bytes). */
const dataSetCount = 4;
const cowEntryBytes = 64;

/** A plain file of the volume's size: the baseline's pwrite + fdatasync loop. */
class PlainFile {
  private readonly fd: number;

  constructor(
    readonly path: string,
    private readonly sizeBytes: number,
  ) {
    this.fd = openSync(path, 'wx+');
    ftruncateSync(this.fd, sizeBytes);
    fdatasyncSync(this.fd);
  }

  /** One region: pwrite, then fdatasync (a write acknowledged once durable). */
  writeRegion(region: number, data: Uint8Array): void {
    const written = writeSync(this.fd, data, 0, data.length, region * data.length);
    if (written !== data.length) throw new Error(`baseline: short write of ${written} bytes at region ${region}`);
    fdatasyncSync(this.fd);
  }

  readRegion(region: number, regionSize: number): Uint8Array {
    const buffer = new Uint8Array(regionSize);
    const count = readSync(this.fd, buffer, 0, regionSize, region * regionSize);
    if (count !== regionSize) throw new Error(`baseline: short read at region ${region}`);
    return buffer;
  }

  close(): void {
    closeSync(this.fd);
  }

  get size(): number {
    return this.sizeBytes;
  }
}

/** The floor of a first write: our durable order in plain system calls, on files of its own. */
class FloorFiles {
  private readonly primaryFd: number;
  private readonly cowFd: number;
  private readonly old: Uint8Array;
  private readonly entry = new Uint8Array(cowEntryBytes);

  constructor(
    dir: string,
    private readonly regions: number,
    private readonly regionSize: number,
  ) {
    const create = (name: string, sizeBytes: number) => {
      const fd = openSync(join(dir, name), 'wx+');
      ftruncateSync(fd, sizeBytes);
      fdatasyncSync(fd);
      return fd;
    };
    this.primaryFd = create('floor-primary', regions * regionSize);
    this.cowFd = create('floor-cow', this.slotOffset(regions));
    this.old = new Uint8Array(regionSize);
  }

  private slotOffset(region: number): number {
    return Math.ceil((this.regions * cowEntryBytes) / 512) * 512 + region * this.regionSize;
  }

  /** Preserve the old region (slot + entry, one fdatasync), then the new data (one fdatasync). */
  firstWrite(region: number, data: Uint8Array): void {
    const { regionSize } = this;
    if (readSync(this.primaryFd, this.old, 0, regionSize, region * regionSize) !== regionSize)
      throw new Error(`floor: short read at region ${region}`);
    this.entry.set(createHash('sha256').update(this.old).digest(), 16);
    writeSync(this.cowFd, this.old, 0, regionSize, this.slotOffset(region));
    writeSync(this.cowFd, this.entry, 0, cowEntryBytes, region * cowEntryBytes);
    fdatasyncSync(this.cowFd);
    if (writeSync(this.primaryFd, data, 0, regionSize, region * regionSize) !== regionSize)
      throw new Error(`floor: short write at region ${region}`);
    fdatasyncSync(this.primaryFd);
  }

  close(): void {
    closeSync(this.primaryFd);
    closeSync(this.cowFd);
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

export function benchWritePath(config: WritePathConfig, log: Log): SectionResult {
  const { regions, regionSize, chunkRegions } = config;
  if (regions % chunkRegions !== 0) throw new RangeError('write path: regions must be a multiple of chunkRegions');
  const chunkCount = regions / chunkRegions;
  const checks = new Checks();
  const dir = join(config.root, 'write-volume');
  const baselineDir = join(config.root, 'write-baseline');
  mkdirSync(baselineDir);
  const storage = new CountingStorage(new NodeStorage());
  const volume = ReplicatedVolume.create(storage, dir, { regions, regionSize });
  const plain = new PlainFile(join(baselineDir, 'plain'), regions * regionSize);
  const floor = new FloorFiles(baselineDir, regions, regionSize);
  storage.take();

  const bytes = new SeededBytes(config.seed);
  const dataSets = Array.from({ length: dataSetCount }, () => bytes.next(regions * regionSize));
  const dataOf = (pass: number, region: number) =>
    dataSets[pass % dataSetCount]!.subarray(region * regionSize, (region + 1) * regionSize);

  const series = {
    oursFirstSeconds: [] as number[],
    baselineFirstSeconds: [] as number[],
    floorFirstSeconds: [] as number[],
    oursSteadySeconds: [] as number[],
    baselineSteadySeconds: [] as number[],
  };
  const countFailures: string[] = [];
  const contentFailures: string[] = [];

  const expectCounts = (
    what: string,
    counts: IoCounts,
    writes: number,
    perWrite: { bytesWritten: number; bytesRead: number; writeCalls: number; syncCalls: number },
  ) => {
    for (const field of ['bytesWritten', 'bytesRead', 'writeCalls', 'syncCalls'] as const) {
      const expected = perWrite[field] * writes;
      if (counts[field] !== expected) countFailures.push(`${what}: ${field} ${counts[field]}, expected ${expected}`);
    }
  };
  /**
   * One repetition: ours and the baseline (and, for first writes, the floor) write
   * the same chunk of regions; `turn` rotates which goes first. Returns their seconds.
   */
  const repetition = (
    pass: number,
    chunk: number,
    turn: number,
    what: string,
    perWrite: Parameters<typeof expectCounts>[3],
    withFloor: boolean,
  ) => {
    const first = chunk * chunkRegions;
    const seconds = { ours: 0, baseline: 0, floor: 0 };
    const runners = {
      ours: () => {
        storage.take();
        seconds.ours = timeSeconds(() => {
          for (let region = first; region < first + chunkRegions; region++)
            volume.writeRegion(region, dataOf(pass, region));
        });
        expectCounts(`${what}, chunk ${chunk}`, storage.take(), chunkRegions, perWrite);
      },
      baseline: () => {
        seconds.baseline = timeSeconds(() => {
          for (let region = first; region < first + chunkRegions; region++)
            plain.writeRegion(region, dataOf(pass, region));
        });
      },
      floor: () => {
        seconds.floor = timeSeconds(() => {
          for (let region = first; region < first + chunkRegions; region++)
            floor.firstWrite(region, dataOf(pass, region));
        });
      },
    };
    const order: (keyof typeof runners)[] = withFloor ? ['ours', 'baseline', 'floor'] : ['ours', 'baseline'];
    for (let index = 0; index < order.length; index++) runners[order[(index + turn) % order.length]!]();
    return seconds;
  };
  const firstPerWrite = {
    bytesWritten: 2 * regionSize + cowEntryBytes,
    bytesRead: regionSize,
    writeCalls: 3,
    syncCalls: 2,
  };
  const steadyPerWrite = { bytesWritten: regionSize, bytesRead: 0, writeCalls: 1, syncCalls: 1 };

  const total = config.warmups + config.cycles;
  let turn = 0;
  for (let cycle = 0; cycle < total; cycle++) {
    const recorded = cycle >= config.warmups;
    const firstPass = 2 * cycle;
    const steadyPass = 2 * cycle + 1;
    volume.startCycle();
    if (volume.nextRegions().length !== 0 || volume.preservedRegions().length !== 0) {
      countFailures.push(`cycle ${cycle}: the cycle did not start with X clear and W empty`);
    }
    // First writes of the cycle (COW slot + entry + sync, data + sync; the bit in memory), chunk by chunk.
    for (let chunk = 0; chunk < chunkCount; chunk++) {
      const seconds = repetition(firstPass, chunk, turn++, `cycle ${cycle} first writes`, firstPerWrite, true);
      if (!recorded) continue;
      series.oursFirstSeconds.push(seconds.ours);
      series.baselineFirstSeconds.push(seconds.baseline);
      series.floorFirstSeconds.push(seconds.floor);
    }
    // Steady state: every region's bit is set and its copy made: the data and its sync only.
    for (let chunk = 0; chunk < chunkCount; chunk++) {
      const seconds = repetition(steadyPass, chunk, turn++, `cycle ${cycle} steady writes`, steadyPerWrite, false);
      if (!recorded) continue;
      series.oursSteadySeconds.push(seconds.ours);
      series.baselineSteadySeconds.push(seconds.baseline);
    }
    // What was written is there: the primary and the plain file hold the last pass.
    for (let region = 0; region < regions; region++) {
      if (!bytesEqual(volume.readRegion(region), dataOf(steadyPass, region)))
        contentFailures.push(`cycle ${cycle}: primary region ${region}`);
      if (!bytesEqual(plain.readRegion(region, regionSize), dataOf(steadyPass, region)))
        contentFailures.push(`cycle ${cycle}: baseline region ${region}`);
    }
    // Drain and complete the cycle, untimed: the next one starts with X clear and W empty.
    volume.transferRegions(volume.currentRegions());
    volume.completeCycle();
    const recent = (values: number[]) =>
      (values.slice(-chunkCount).reduce((sum, value) => sum + value, 0) / regions) * 1e6;
    if (recorded) {
      log(
        `  write path cycle ${cycle - config.warmups + 1}/${config.cycles}: first ${recent(series.oursFirstSeconds).toFixed(0)} vs ${recent(series.baselineFirstSeconds).toFixed(0)} us/write, ` +
          `steady ${recent(series.oursSteadySeconds).toFixed(0)} vs ${recent(series.baselineSteadySeconds).toFixed(0)} us/write`,
      );
    } else {
      log(`  write path warm-up cycle ${cycle + 1}/${config.warmups}`);
    }
  }
  volume.close();
  plain.close();
  floor.close();

  checks.expectAll(
    'write path: bytes and calls per write (first: 2 regions + 64 bytes written, 1 region read, 3 writes, 2 fdatasyncs; steady: 1 region written, 1 write, 1 fdatasync)',
    countFailures,
    `first ${firstPerWrite.bytesWritten} bytes / ${firstPerWrite.syncCalls} fdatasyncs per write, steady ${regionSize} bytes / 1 fdatasync per write, in every chunk`,
  );
  checks.expectAll(
    'write path: primary and baseline file hold the bytes written',
    contentFailures,
    `${regions} regions read back after every cycle`,
  );

  const perWriteMicroseconds = (seconds: number[]) => summarize(seconds.map((s) => (s / chunkRegions) * 1e6));
  const oursFirstUs = perWriteMicroseconds(series.oursFirstSeconds);
  const baselineFirstUs = perWriteMicroseconds(series.baselineFirstSeconds);
  const oursSteadyUs = perWriteMicroseconds(series.oursSteadySeconds);
  const baselineSteadyUs = perWriteMicroseconds(series.baselineSteadySeconds);
  const steadyRatio = summarize(ratios(series.oursSteadySeconds, series.baselineSteadySeconds));
  const firstRatio = summarize(ratios(series.oursFirstSeconds, series.baselineFirstSeconds));
  const floorRatio = summarize(ratios(series.floorFirstSeconds, series.baselineFirstSeconds));
  const overFloorRatio = summarize(ratios(series.oursFirstSeconds, series.floorFirstSeconds));
  const floorFirstUs = perWriteMicroseconds(series.floorFirstSeconds);
  return {
    section: 'write path',
    figures: [
      {
        key: 'writeSteadyRatio',
        label: 'steady-state write (bit set, region preserved), ours / baseline',
        unit: 'ratio',
        summary: steadyRatio,
        against: 'pwrite + fdatasync loop, same pattern, same file system',
        target: { text: '<= 1.10', met: steadyRatio.median <= 1.1 },
        detail: `${oursSteadyUs.median.toFixed(0)} vs ${baselineSteadyUs.median.toFixed(0)} us/write; fdatasyncs/write ${steadyPerWrite.syncCalls} vs 1`,
        why: `the same system calls as the baseline (1 pwrite, 1 fdatasync per write); the difference is the volume's checks and the spread of fdatasync latency (IQR ${steadyRatio.q1.toFixed(2)}..${steadyRatio.q3.toFixed(2)})`,
      },
      {
        key: 'writeFirstRatio',
        label: 'first write in a cycle (COW + new bit), ours / baseline',
        unit: 'ratio',
        summary: firstRatio,
        against: 'pwrite + fdatasync loop, same pattern, same file system',
        target: { text: '<= 2.5', met: firstRatio.median <= 2.5 },
        detail: `${oursFirstUs.median.toFixed(0)} vs ${baselineFirstUs.median.toFixed(0)} us/write; fdatasyncs/write ${firstPerWrite.syncCalls} vs 1`,
        why:
          `a first write makes ${firstPerWrite.syncCalls} fdatasyncs (COW file, primary; its next bit is implied by the durable COW entry and synced at completion) to the baseline's 1: ` +
          `the same system calls made straight with node:fs (writeFirstFloorRatio) cost ${floorRatio.median.toFixed(2)}x the baseline in this run, and ours ${overFloorRatio.median.toFixed(2)}x that floor`,
      },
      {
        key: 'writeFirstFloorRatio',
        label: 'first write: our durable order in plain node:fs calls (the floor), over the baseline',
        unit: 'ratio',
        summary: floorRatio,
        against: 'pwrite + fdatasync loop, same pattern, same file system',
        detail: `${floorFirstUs.median.toFixed(0)} vs ${baselineFirstUs.median.toFixed(0)} us/write: pread, SHA-256, 2 pwrites + fdatasync of the COW file, pwrite + fdatasync of the region`,
      },
      {
        key: 'writeFirstOverFloorRatio',
        label: 'first write, ours over the floor (what the volume adds to its system calls)',
        unit: 'ratio',
        summary: overFloorRatio,
        detail: `${oursFirstUs.median.toFixed(0)} vs ${floorFirstUs.median.toFixed(0)} us/write`,
      },
      { key: 'writeSteadyMicroseconds', label: 'steady-state write, ours', unit: 'us/write', summary: oursSteadyUs },
      {
        key: 'writeSteadyBaselineMicroseconds',
        label: 'steady-state write, baseline',
        unit: 'us/write',
        summary: baselineSteadyUs,
      },
      { key: 'writeFirstMicroseconds', label: 'first write in a cycle, ours', unit: 'us/write', summary: oursFirstUs },
      {
        key: 'writeFirstBaselineMicroseconds',
        label: 'first write pattern, baseline',
        unit: 'us/write',
        summary: baselineFirstUs,
      },
      { key: 'writeFirstFloorMicroseconds', label: 'first write, the floor', unit: 'us/write', summary: floorFirstUs },
    ],
    checks: checks.list,
    notes: [
      `Write path: ${regions} regions x ${regionSize} B; ${config.cycles} cycles after ${config.warmups} warm-up cycle(s); in each cycle every region is written once (first writes) then once more (steady state), ` +
        `in chunks of ${chunkRegions} regions; each chunk is one repetition: ours writes it, the baseline writes the same regions of its file (and, for first writes, the floor of its own files), in an order that rotates. ` +
        `Ratio = median of the per-chunk ratios (${series.oursFirstSeconds.length} repetitions each).`,
      `A first write in a cycle is 5 durable calls with 2 fdatasyncs (COW file, primary) against the baseline's 1: its next bit stays in memory, because the durable COW entry implies it (recovery rebuilds it) until completion writes and syncs the map. A steady-state write is 2 calls with 1 fdatasync, like the baseline.`,
    ],
    data: {
      regions,
      regionSize,
      chunkRegions,
      cycles: config.cycles,
      warmups: config.warmups,
      firstWritePerWrite: firstPerWrite,
      steadyWritePerWrite: steadyPerWrite,
      ...series,
    },
  };
}
