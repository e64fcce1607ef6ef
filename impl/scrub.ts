// `cowmap scrub` (docs/format.md, "Scrub"): reads every checksummed structure of a
// volume and its secondary and reports each mismatch with its file, byte offset
// and region; with repair, marks the affected regions in the next map so that the
// next cycle resends them (the primary is the source of truth), as DRBD's online
// verify does. The volume gives scrub what it needs through a ScrubTarget: its
// own structures' findings (metadata, maps, COW) and the coverage of each region;
// scrub checks the secondary and the uncovered regions of the primary itself.

import type { Phase } from './metadata.ts';
import type { Replica } from './replica.ts';
import type { ScrubFinding } from './scrubFinding.ts';

/**
 * The regions --repair marks in X for a finding about a structure that covers
 * several regions (a map page: all its regions, as their bits cannot be trusted).
 */
export interface RegionRange {
  first: number;
  count: number;
}

/** A finding of the volume's own structures; `affected` defaults to `region` alone. */
export interface TargetFinding extends ScrubFinding {
  affected?: RegionRange;
}

/** What scrub needs from an open volume (ReplicatedVolume builds it). */
export interface ScrubTarget {
  /** The volume directory DIR, as opened. */
  readonly dir: string;
  readonly regions: number;
  readonly regionSize: number;
  readonly phase: Phase;
  /** Both metadata slots; never repaired (region null). */
  metadataFindings(): TargetFinding[];
  /** Every page of both map files that fails its CRC. */
  mapFindings(): TargetFinding[];
  /** Every COW entry of the running cycle and its slot (none while idle). */
  cowFindings(): TargetFinding[];
  /** DIR/primary, as findings name it. */
  readonly primaryPath: string;
  /** P[region], unchecked. */
  readPrimary(region: number): Uint8Array;
  readonly replica: Replica;
  /** The region is in X or C, or W holds a copy of it: P and S may differ. */
  covered(region: number): boolean;
  /**
   * Replicating, the region is in C and was not sent since the open: its digest
   * table entry may be stale (docs/format.md, "DIR2/digests"), S is not checked.
   */
  pending(region: number): boolean;
  /** repair: X[r] := 1 for each region, durable when this returns. */
  markNext(regions: readonly number[]): void;
  /** repair: rewrites each map page that fails its CRC (fresh CRC, bits kept as recovery keeps them). */
  rewriteMapPages(): void;
  /** repair: forgets W's copy of the region (it fails its digest); the cycle sends P's data for it. */
  dropCopy(region: number): void;
}
