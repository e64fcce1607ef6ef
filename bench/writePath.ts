// 1. The write path on real files, 4 KiB regions, against a plain pwrite +
// fdatasync loop of the same pattern on a file of the same size on the same file
// system (plainFile.ts).
//
// Each cycle: startCycle, then every region written once (FIRST writes of the
// cycle: copy-on-write, a new next bit and the data: 5 durable calls, 2 fdatasyncs
// per write; the next bit stays in memory, implied by the durable COW entry, and
// reaches the map at completion), then every region written again (STEADY state:
// bit set, region preserved: pwrite + fdatasync of the primary, 2 durable calls,
// 1 fdatasync per write); then the cycle is drained and completed, untimed.
// First writes have a third contender, the FLOOR (floorFiles.ts): the same system
// calls as our first write made straight with node:fs on files of their own, with
// none of the volume's logic. The writes go in chunks of a few regions; each chunk
// is one repetition (writePathRepetitions.ts): ours writes it, the baseline writes
// the same regions of its own file, and the two alternate which goes first.
// Fine-grained pairs keep the drift of fdatasync latency (which moves by 3x over
// seconds on a virtual disk) out of the ratios. The warm-up cycle is not recorded
// (it allocates the blocks of the sparse files of both contenders).

import { Checks, type Figure, type Log, type SectionResult } from './report.ts';
import { ratios, summarize } from './stats.ts';
import { firstWriteIo, steadyWriteIo, type WritePathConfig, WritePathRepetitions } from './writePathRepetitions.ts';

const baselineText = 'pwrite + fdatasync loop, same pattern, same file system';

/** Microseconds per write of each contender, from the seconds of its chunks. */
function perWriteMicroseconds(config: WritePathConfig, series: WritePathRepetitions['series']) {
  const perWrite = (seconds: number[]) => summarize(seconds.map((s) => (s / config.chunkRegions) * 1e6));
  return {
    oursFirst: perWrite(series.oursFirstSeconds),
    baselineFirst: perWrite(series.baselineFirstSeconds),
    floorFirst: perWrite(series.floorFirstSeconds),
    oursSteady: perWrite(series.oursSteadySeconds),
    baselineSteady: perWrite(series.baselineSteadySeconds),
  };
}

/** The ratios: per chunk, ours and the floor over the baseline, and ours over the floor. */
function ratioFigures(config: WritePathConfig, series: WritePathRepetitions['series']): Figure[] {
  const micro = perWriteMicroseconds(config, series);
  const steadyRatio = summarize(ratios(series.oursSteadySeconds, series.baselineSteadySeconds));
  const firstRatio = summarize(ratios(series.oursFirstSeconds, series.baselineFirstSeconds));
  const floorRatio = summarize(ratios(series.floorFirstSeconds, series.baselineFirstSeconds));
  const overFloorRatio = summarize(ratios(series.oursFirstSeconds, series.floorFirstSeconds));
  const firstSyncs = firstWriteIo(config.regionSize).syncCalls;
  const us = (summary: { median: number }) => summary.median.toFixed(0);
  return [
    {
      key: 'writeSteadyRatio',
      label: 'steady-state write (bit set, region preserved), ours / baseline',
      unit: 'ratio',
      summary: steadyRatio,
      against: baselineText,
      target: { text: '<= 1.10', met: steadyRatio.median <= 1.1 },
      detail:
        `${us(micro.oursSteady)} vs ${us(micro.baselineSteady)} us/write; ` +
        `fdatasyncs/write ${steadyWriteIo(config.regionSize).syncCalls} vs 1`,
      why:
        'the same system calls as the baseline (1 pwrite, 1 fdatasync per write); the difference is the ' +
        "volume's checks and the spread of fdatasync latency " +
        `(IQR ${steadyRatio.q1.toFixed(2)}..${steadyRatio.q3.toFixed(2)})`,
    },
    {
      key: 'writeFirstRatio',
      label: 'first write in a cycle (COW + new bit), ours / baseline',
      unit: 'ratio',
      summary: firstRatio,
      against: baselineText,
      target: { text: '<= 2.5', met: firstRatio.median <= 2.5 },
      detail: `${us(micro.oursFirst)} vs ${us(micro.baselineFirst)} us/write; fdatasyncs/write ${firstSyncs} vs 1`,
      why:
        `a first write makes ${firstSyncs} fdatasyncs (COW file, primary; its next bit is implied by the durable ` +
        "COW entry and synced at completion) to the baseline's 1: the same system calls made straight with " +
        `node:fs (writeFirstFloorRatio) cost ${floorRatio.median.toFixed(2)}x the baseline in this run, ` +
        `and ours ${overFloorRatio.median.toFixed(2)}x that floor`,
    },
    {
      key: 'writeFirstFloorRatio',
      label: 'first write: our durable order in plain node:fs calls (the floor), over the baseline',
      unit: 'ratio',
      summary: floorRatio,
      against: baselineText,
      detail:
        `${us(micro.floorFirst)} vs ${us(micro.baselineFirst)} us/write: pread, SHA-256, 2 pwrites + fdatasync of ` +
        'the COW file, pwrite + fdatasync of the region',
    },
    {
      key: 'writeFirstOverFloorRatio',
      label: 'first write, ours over the floor (what the volume adds to its system calls)',
      unit: 'ratio',
      summary: overFloorRatio,
      detail: `${us(micro.oursFirst)} vs ${us(micro.floorFirst)} us/write`,
    },
  ];
}

/** The microseconds per write of each contender. */
function microsecondFigures(config: WritePathConfig, series: WritePathRepetitions['series']): Figure[] {
  const micro = perWriteMicroseconds(config, series);
  return [
    { key: 'writeSteadyMicroseconds', label: 'steady-state write, ours', unit: 'us/write', summary: micro.oursSteady },
    {
      key: 'writeSteadyBaselineMicroseconds',
      label: 'steady-state write, baseline',
      unit: 'us/write',
      summary: micro.baselineSteady,
    },
    {
      key: 'writeFirstMicroseconds',
      label: 'first write in a cycle, ours',
      unit: 'us/write',
      summary: micro.oursFirst,
    },
    {
      key: 'writeFirstBaselineMicroseconds',
      label: 'first write pattern, baseline',
      unit: 'us/write',
      summary: micro.baselineFirst,
    },
    {
      key: 'writeFirstFloorMicroseconds',
      label: 'first write, the floor',
      unit: 'us/write',
      summary: micro.floorFirst,
    },
  ];
}

function writePathNotes(config: WritePathConfig, repetitionCount: number): string[] {
  return [
    `Write path: ${config.regions} regions x ${config.regionSize} B; ${config.cycles} cycles after ` +
      `${config.warmups} warm-up cycle(s); in each cycle every region is written once (first writes) then once ` +
      `more (steady state), in chunks of ${config.chunkRegions} regions; each chunk is one repetition: ours ` +
      'writes it, the baseline writes the same regions of its file (and, for first writes, the floor of its own ' +
      `files), in an order that rotates. Ratio = median of the per-chunk ratios (${repetitionCount} repetitions each).`,
    "A first write in a cycle is 5 durable calls with 2 fdatasyncs (COW file, primary) against the baseline's 1: " +
      'its next bit stays in memory, because the durable COW entry implies it (recovery rebuilds it) until ' +
      'completion writes and syncs the map. A steady-state write is 2 calls with 1 fdatasync, like the baseline.',
  ];
}

export function benchWritePath(config: WritePathConfig, log: Log): SectionResult {
  const checks = new Checks();
  const run = new WritePathRepetitions(config, log);
  for (let cycle = 0; cycle < config.warmups + config.cycles; cycle++) run.runCycle(cycle);
  run.close();
  const firstIo = firstWriteIo(config.regionSize);
  checks.expectAll(
    'write path: bytes and calls per write (first: 2 regions + 64 bytes written, 1 region read, 3 writes, ' +
      '2 fdatasyncs; steady: 1 region written, 1 write, 1 fdatasync)',
    run.countFailures,
    `first ${firstIo.bytesWritten} bytes / ${firstIo.syncCalls} fdatasyncs per write, ` +
      `steady ${config.regionSize} bytes / 1 fdatasync per write, in every chunk`,
  );
  checks.expectAll(
    'write path: primary and baseline file hold the bytes written',
    run.contentFailures,
    `${config.regions} regions read back after every cycle`,
  );
  const { regions, regionSize, chunkRegions, cycles, warmups } = config;
  return {
    section: 'write path',
    figures: [...ratioFigures(config, run.series), ...microsecondFigures(config, run.series)],
    checks: checks.list,
    notes: writePathNotes(config, run.series.oursFirstSeconds.length),
    data: {
      regions,
      regionSize,
      chunkRegions,
      cycles,
      warmups,
      firstWritePerWrite: firstIo,
      steadyWritePerWrite: steadyWriteIo(regionSize),
      ...run.series,
    },
  };
}
