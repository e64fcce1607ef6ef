// One whole replication cycle, as `cowmap cycle`, the cycle bench and the
// memory bench's child run it: swap (or resume a cycle a crash interrupted), send every region
// of C in batches, complete. Each batch is one transferRegions call, so one
// fdatasync of the secondary per batch instead of one per region.

import type { ReplicatedVolume } from './replicatedVolume.ts';

/**
 * Bytes sent per batch at most. Larger batches sync less often; a crash loses at
 * most one batch's progress, and every region of C is sent again after a crash
 * anyway. The bound keeps a batch's unsynced dirty pages modest.
 */
export const cycleBatchBytesMax = 64 << 20;

export interface CycleRun {
  /** The cycle's number. */
  readonly cycle: number;
  /** True when the volume opened in the middle of a cycle and this run finished it. */
  readonly resumed: boolean;
  /** The regions sent, in order (C, ascending). */
  readonly regions: readonly number[];
  /** transferRegions calls made: one sync of the secondary each. */
  readonly batches: number;
}

/** Runs (or resumes) one cycle to completion; `onBatch` hears the progress after each batch. */
export function runCycle(
  volume: ReplicatedVolume,
  onBatch?: (sentCount: number, totalCount: number) => void,
): CycleRun {
  const resumed = volume.phase === 'replicating';
  if (!resumed) volume.startCycle();
  const regions = volume.currentRegions();
  const batchRegions = Math.max(1, Math.floor(cycleBatchBytesMax / volume.regionSize));
  let batches = 0;
  for (let start = 0; start < regions.length; start += batchRegions) {
    const end = Math.min(regions.length, start + batchRegions);
    volume.transferRegions(regions.slice(start, end));
    batches++;
    onBatch?.(end, regions.length);
  }
  volume.completeCycle();
  return { cycle: volume.cycle, resumed, regions, batches };
}
