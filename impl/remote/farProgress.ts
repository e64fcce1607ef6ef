// Where replication stands as the primary knows it, and the judgement of the far
// side's control block against it on every connect and at the start of every
// confirmation (docs/remote.md, "Staleness"). A block compares as (cycle, state) with
// sending < complete. L is the primary's last completed cycle; while cycle N = L + 1
// runs, k counts its batches confirmed by a FLUSH on this open.
//
// Every control block this open writes carries its random writer id and a sequence
// number that grows with every control write and is never reused; the floor is the
// seq of the last block a successful FLUSH covered. Each batch writes its block after
// every data reply and before its FLUSH, so a far side holding this writer's block
// with seq >= floor holds every region this open saw confirmed. Any other block
// (an older seq, another writer's, none) is an older image of the export:
//   far > (N or L, complete)            another primary writes there: E_CORRUPT
//   far < (L, complete)                 the far side lost completed cycles: E_CORRUPT
//   this writer, seq below the floor at which this open completed L:
//     in cycle L                        a late block of an attempt whose connection died, or a
//                                       rewind into L: `verifyCompleted` (the replica reads back)
//     older                             lost completed cycles: E_CORRUPT
//   N runs, k > 0, and the block is not this writer's with seq >= floor
//                                       it lost regions of N it had confirmed: lostSent
// What this cannot see (a server that acks FLUSH and loses writes; a copy that read the
// image before the batch's data and the control block after) is in docs/remote.md.

import { ReplicaLinkError } from '../errors.ts';
import type { DecodedControl, StoredControlBlock } from './controlBlock.ts';

export interface FarProgress {
  /** L: the last cycle the primary completed. */
  lastCompleted: number;
  /** N, or null while idle. */
  running: number | null;
  /** k: batches of N confirmed by a FLUSH on this open. */
  confirmedBatches: number;
  /** This open's random id, in every control block it writes. */
  writer: Uint8Array;
  /** The seq of the last control block a successful FLUSH covered; 0 none. */
  floor: number;
  /** The floor when this open confirmed L's last batch (every region of L durable); null when another open completed L. */
  completedFloor: number | null;
}

/**
 * What a judgement found: the far side is usable; it lost regions of the running
 * cycle; or it holds a block of this open older than L's last batch but of cycle L,
 * which only a read-back of L's regions can tell from a rewind.
 */
export type FarVerdict = 'current' | 'lostSent' | 'verifyCompleted';

function sameWriter(block: StoredControlBlock, writer: Uint8Array): boolean {
  return Buffer.from(block.writer).equals(Buffer.from(writer));
}

/**
 * Judges a decoded control block that passed the identity check. ReplicaLinkError
 * E_CORRUPT when the export must not be used.
 */
export function judgeFar(decoded: DecodedControl, progress: FarProgress, url: string): FarVerdict {
  if (decoded.kind !== 'block') return 'current'; // The identity check refused it before.
  const { block } = decoded;
  const { cycle, state } = block;
  const newest = progress.running ?? progress.lastCompleted;
  if (cycle > newest) {
    throw new ReplicaLinkError(
      'E_CORRUPT',
      `the secondary ${url} is at cycle ${cycle} (${state}), ahead of this volume (cycle ${newest}): ` +
        'another primary writes to it',
    );
  }
  const ours = sameWriter(block, progress.writer);
  if (ours && block.seq >= progress.floor) return 'current';
  const lostCompleted = ours
    ? progress.completedFloor !== null && block.seq < progress.completedFloor
    : cycle < progress.lastCompleted || (cycle === progress.lastCompleted && state === 'sending');
  if (lostCompleted && ours && cycle === progress.lastCompleted) return 'verifyCompleted';
  if (lostCompleted || (ours && progress.completedFloor === null && cycle < progress.lastCompleted)) {
    const holds = `its control block is cycle ${cycle} (${state}, seq ${block.seq})`;
    throw lostCompletedError(url, `${holds}, this volume completed cycle ${progress.lastCompleted}`);
  }
  if (progress.running === null || progress.confirmedBatches === 0) return 'current';
  return 'lostSent';
}

/** The far side lost data of a completed cycle (`what` names it): the export must be rebuilt. */
export function lostCompletedError(url: string, what: string): ReplicaLinkError {
  return new ReplicaLinkError(
    'E_CORRUPT',
    `the secondary ${url} lost completed cycles (${what}); rebuild the secondary (a new volume, or copy the primary to it)`,
  );
}

/** The far side lost regions of the running cycle it had confirmed: every region of C goes again. */
export function lostSentError(url: string, cycle: number): ReplicaLinkError {
  return new ReplicaLinkError(
    'E_IO',
    `confirmation of cycle ${cycle}: the secondary ${url} lost regions of this cycle that it had ` +
      'confirmed (restarted with an older image, or put back to an older copy?): every region of the cycle is sent again',
    { lostSent: true },
  );
}

/**
 * True when the block (judged usable) is this open's (L, sending): the far side holds
 * L's regions but lost L's completion, which the replica then writes again.
 */
export function lostCompletion(decoded: DecodedControl, progress: FarProgress): boolean {
  if (decoded.kind !== 'block') return false;
  const { block } = decoded;
  return block.cycle === progress.lastCompleted && block.state === 'sending' && sameWriter(block, progress.writer);
}
