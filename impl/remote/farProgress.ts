// Where replication stands as the primary knows it, and the judgement of the far
// side's control block against it on every connect (docs/remote.md, "Staleness").
// A block compares as (cycle, state) with sending < complete. L is the primary's
// last completed cycle; while cycle N = L + 1 runs, k counts its batches confirmed
// by a FLUSH on this open.
//   far > (N or L, complete)            another primary writes there: E_CORRUPT
//   far < (L, complete)                 the far side lost completed cycles: E_CORRUPT
//   N runs, k > 0, and far is (L, complete) or (N, sending, b < k)
//                                       it lost regions of N it had confirmed: lostSent
// Each batch ends with a block (N, sending, k) written after its data replied and
// before its FLUSH, so that a far side holding b >= k holds the first k batches.

import { ReplicaLinkError } from '../errors.ts';
import type { DecodedControl } from './controlBlock.ts';

export interface FarProgress {
  /** L: the last cycle the primary completed. */
  lastCompleted: number;
  /** N, or null while idle. */
  running: number | null;
  /** k: batches of N confirmed by a FLUSH on this open. */
  confirmedBatches: number;
}

/** What a connect found: the far side is usable, or it lost regions of the running cycle. */
export type FarVerdict = 'current' | 'lostSent';

/**
 * Judges a decoded control block that passed the identity check. ReplicaLinkError
 * E_CORRUPT when the export must not be used.
 */
export function judgeFar(decoded: DecodedControl, progress: FarProgress, url: string): FarVerdict {
  if (decoded.kind !== 'block') return 'current'; // The identity check refused it before.
  const { cycle, state, batch } = decoded.block;
  const newest = progress.running ?? progress.lastCompleted;
  if (cycle > newest) {
    throw new ReplicaLinkError(
      'E_CORRUPT',
      `the secondary ${url} is at cycle ${cycle} (${state}), ahead of this volume (cycle ${newest}): ` +
        'another primary writes to it',
    );
  }
  if (cycle < progress.lastCompleted || (cycle === progress.lastCompleted && state === 'sending')) {
    throw new ReplicaLinkError(
      'E_CORRUPT',
      `the secondary ${url} lost completed cycles: it holds cycle ${cycle} (${state}), this volume completed ` +
        `cycle ${progress.lastCompleted}; rebuild the secondary (a new volume, or copy the primary to it)`,
    );
  }
  if (progress.running === null || progress.confirmedBatches === 0) return 'current';
  if (cycle < progress.running) return 'lostSent';
  return state === 'sending' && batch < progress.confirmedBatches ? 'lostSent' : 'current';
}
