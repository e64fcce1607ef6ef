// One whole replication cycle, as `cowmap cycle`, the cycle bench and the
// memory bench's child run it: swap (or resume a cycle a crash interrupted), send every region
// of C in batches, complete. Each batch is one transferRegions call, so one
// fdatasync of the secondary (or one NBD FLUSH) per batch instead of one per region.
// A remote secondary that lost regions it had confirmed (docs/remote.md, "Staleness")
// makes completion fail with lostSent: every region of C counts as unsent again and is
// sent again, a few rounds at most.

import { ReplicaLinkError } from './errors.ts';
import type { ReplicatedVolume } from './replicatedVolume.ts';

/**
 * Bytes sent per batch at most. Larger batches sync less often; a crash loses at
 * most one batch's progress, and every region of C is sent again after a crash
 * anyway. The bound keeps a batch's unsynced dirty pages modest.
 */
export const cycleBatchBytesMax = 64 << 20;

/** Rounds of sending C again after the far side lost what it had confirmed, before giving up. */
export const lostSentRoundsMax = 3;

export interface CycleRun {
  /** The cycle's number. */
  readonly cycle: number;
  /** True when the volume opened in the middle of a cycle and this run finished it. */
  readonly resumed: boolean;
  /** The regions of C, in order (ascending): each sent at least once. */
  readonly regions: readonly number[];
  /** transferRegions calls made: one sync of the secondary each. */
  readonly batches: number;
}

/**
 * Runs (or resumes) one cycle to completion; `onBatch` hears the progress after each
 * batch. A ReplicaLinkError (the remote secondary's retries ran out) leaves the cycle
 * running and the volume usable: a later run resumes it.
 */
export function runCycle(
  volume: ReplicatedVolume,
  onBatch?: (sentCount: number, totalCount: number) => void,
): CycleRun {
  const resumed = volume.phase === 'replicating';
  if (!resumed) volume.startCycle();
  const regions = volume.currentRegions();
  let batches = 0;
  for (let round = 0; ; round++) {
    batches += sendInBatches(volume, volume.unsentRegions(), onBatch);
    try {
      volume.completeCycle();
      break;
    } catch (error) {
      if (!(error instanceof ReplicaLinkError && error.lostSent) || round + 1 >= lostSentRoundsMax) throw error;
    }
  }
  return { cycle: volume.cycle, resumed, regions, batches };
}

/** transferRegions of `regions` in batches of cycleBatchBytesMax at most; the number of batches. */
function sendInBatches(
  volume: ReplicatedVolume,
  regions: readonly number[],
  onBatch?: (sentCount: number, totalCount: number) => void,
): number {
  const batchRegions = Math.max(1, Math.floor(cycleBatchBytesMax / volume.regionSize));
  let batches = 0;
  for (let start = 0; start < regions.length; start += batchRegions) {
    const end = Math.min(regions.length, start + batchRegions);
    volume.transferRegions(regions.slice(start, end));
    batches++;
    onBatch?.(end, regions.length);
  }
  return batches;
}
