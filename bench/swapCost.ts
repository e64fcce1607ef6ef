// 3. Swap cost against the number of regions: startCycle on volumes of 1K, 16K
// and 256K regions (512-byte regions, so the files stay small and sparse), timed
// and its durable I/O calls counted; they must be the same for every size (one
// metadata slot written and synced). Each repetition writes one region while idle
// (untimed, so the cycle has a region to send), times startCycle, then sends the
// region and completes (untimed). The sizes take turns within each repetition, in
// rotating order.

import { join } from 'node:path';
import { NodeStorage } from '../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { CountingStorage } from '../harness/storage/countingStorage.ts';
import { Checks, type Figure, type Log, type SectionResult } from './report.ts';
import { rotated } from './rotation.ts';
import { SeededBytes } from './seededBytes.ts';
import { emptySeries } from './series.ts';
import { ratios, summarize, timeSeconds } from './stats.ts';

export interface SwapConfig {
  readonly root: string;
  readonly regionCounts: readonly number[];
  readonly regionSize: number;
  readonly repetitions: number;
  readonly warmups: number;
  readonly seed: number;
}

/** Durable calls of one swap: the metadata slot's write and its fdatasync (docs/format.md). */
const swapDurableCalls = 2;

/** One volume size under test, and its series. */
interface SwapVolume {
  readonly regions: number;
  readonly storage: CountingStorage;
  readonly volume: ReplicatedVolume;
  readonly series: Record<'seconds' | 'durableCalls' | 'bytesWritten', number[]>;
}

function createVolume(config: SwapConfig, regions: number): SwapVolume {
  const storage = new CountingStorage(new NodeStorage());
  const volume = ReplicatedVolume.create(storage, join(config.root, `swap-${regions}`), {
    regions,
    regionSize: config.regionSize,
  });
  storage.take();
  return { regions, storage, volume, series: emptySeries('seconds', 'durableCalls', 'bytesWritten') };
}

/** One swap, timed and counted: a region written while idle, startCycle, then the cycle drained, untimed. */
function measureSwap(entry: SwapVolume, repetition: number, data: Uint8Array, ioFailures: string[]) {
  const { volume, storage } = entry;
  volume.writeRegion((repetition * 7919) % entry.regions, data);
  storage.take();
  const seconds = timeSeconds(() => volume.startCycle());
  const counts = storage.take();
  if (counts.durableCalls !== swapDurableCalls || counts.syncCalls !== 1) {
    ioFailures.push(
      `${entry.regions} regions, repetition ${repetition}: ${counts.durableCalls} durable calls ` +
        `(${counts.syncCalls} syncs), expected ${swapDurableCalls} (1)`,
    );
  }
  for (const current of volume.currentRegions()) volume.transfer(current);
  volume.completeCycle();
  return { seconds, counts };
}

function swapFigures(config: SwapConfig, volumes: readonly SwapVolume[]): Figure[] {
  const smallest = volumes[0]!;
  const largest = volumes[volumes.length - 1]!;
  const growth = summarize(ratios(largest.series.seconds, smallest.series.seconds));
  const microseconds = (seconds: number[]) => summarize(seconds.map((s) => s * 1e6));
  return [
    {
      key: 'swapGrowth',
      label: `startCycle time, ${largest.regions} regions / ${smallest.regions} regions`,
      unit: 'ratio',
      summary: growth,
      against: `the same swap on ${smallest.regions} regions`,
      target: { text: 'flat (~1)', met: growth.median <= 1.5 },
      detail: `${swapDurableCalls} durable calls at every size`,
    },
    ...volumes.map((entry) => ({
      key: `swapMicroseconds${entry.regions}`,
      label: `startCycle, ${entry.regions} regions x ${config.regionSize} B`,
      unit: 'us',
      summary: microseconds(entry.series.seconds),
      detail: `${entry.series.durableCalls[0]} durable calls, ${entry.series.bytesWritten[0]} B written`,
    })),
  ];
}

export function benchSwap(config: SwapConfig, log: Log): SectionResult {
  const checks = new Checks();
  const sizes = [...config.regionCounts].sort((a, b) => a - b);
  const bytes = new SeededBytes(config.seed);
  const volumes = sizes.map((regions) => createVolume(config, regions));
  const ioFailures: string[] = [];
  for (let repetition = 0; repetition < config.warmups + config.repetitions; repetition++) {
    for (const entry of rotated(volumes, repetition)) {
      const { seconds, counts } = measureSwap(entry, repetition, bytes.next(config.regionSize), ioFailures);
      if (repetition < config.warmups) continue;
      entry.series.seconds.push(seconds);
      entry.series.durableCalls.push(counts.durableCalls);
      entry.series.bytesWritten.push(counts.bytesWritten);
    }
  }
  for (const entry of volumes) entry.volume.close();
  checks.expectAll(
    `swap: ${swapDurableCalls} durable calls (1 metadata write, 1 fdatasync) whatever the number of regions`,
    ioFailures,
    `${swapDurableCalls} calls, ${volumes[0]!.series.bytesWritten[0]} bytes written, for ${sizes.join(', ')} regions`,
  );
  const medianMicroseconds = (entry: SwapVolume) => (summarize(entry.series.seconds).median * 1e6).toFixed(0);
  log(`  swap: ${volumes.map((entry) => `${entry.regions} regions ${medianMicroseconds(entry)} us`).join(', ')}`);
  return {
    section: 'swap cost',
    figures: swapFigures(config, volumes),
    checks: checks.list,
    notes: [
      `Swap: ${config.repetitions} repetitions after ${config.warmups} warm-up(s), sizes in rotating order; ` +
        'growth = median over repetitions of (largest / smallest); "flat" is read as a median growth of at most 1.5.',
    ],
    data: Object.fromEntries(volumes.map((entry) => [`regions${entry.regions}`, entry.series])),
  };
}
