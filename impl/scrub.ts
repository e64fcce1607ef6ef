// `cowmap scrub` (docs/format.md, "Scrub"): reads every checksummed structure of a
// volume and its secondary and reports each mismatch with its file, byte offset
// and region; with repair, marks the affected regions in the next map so that the
// next cycle resends them (the primary is the source of truth), as DRBD's online
// verify does. The volume gives scrub what it needs through a ScrubTarget: its
// own structures' findings (metadata, maps, COW) and the coverage of each region;
// scrub checks the secondary and the uncovered regions of the primary itself.

import { assert } from './assert.ts';
import { Bitmap } from './bitmap.ts';
import { crc32 } from './checksum.ts';
import type { Phase } from './metadata.ts';
import type { DigestPageProblem, Replica } from './replica.ts';
import type { ScrubFinding, ScrubOptions, ScrubReport } from './scrubFinding.ts';

export type { ScrubFinding, ScrubOptions, ScrubReport } from './scrubFinding.ts';

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

/** A finding as scrub notes it, and what --repair does about it. */
interface Noted {
  finding: ScrubFinding;
  /** The regions to mark in X, or null when nothing is repaired (metadata). */
  affected: RegionRange | null;
  /** A COW finding: --repair drops the copy. */
  droppedCopy?: boolean;
}

/**
 * Scrubs the volume behind `target`: the volume's own structures (from the target),
 * every page of the digest table, every region of S that is not pending against
 * its entry, and every region of P that nothing covers against the same entry
 * (P and S must agree there). With `repair`, the regions of every finding but the
 * metadata's are marked in X durably FIRST (so that a crash inside the repair
 * still leaves them to be resent: the primary is the source of truth), then the
 * failing digest and map pages are rewritten and the failing COW copies dropped.
 */
export function scrubVolume(target: ScrubTarget, options: ScrubOptions): ScrubReport {
  const noted: Noted[] = [];
  const own = (findings: TargetFinding[], repairable: boolean, droppedCopy = false): void => {
    for (const { affected, ...finding } of findings) {
      const range = affected ?? (finding.region === null ? null : { first: finding.region, count: 1 });
      noted.push({
        finding: { ...finding, repaired: false },
        affected: repairable ? range : null,
        droppedCopy: droppedCopy && finding.region !== null,
      });
    }
  };
  own(target.metadataFindings(), false);
  const mapFindings = target.mapFindings();
  own(mapFindings, true);
  const cowFindings = target.cowFindings();
  own(cowFindings, true, true);
  const digestPages = target.replica.digestPageProblems();
  for (const page of digestPages) noted.push(digestPageFinding(target, page));
  const regionsChecked = checkRegions(target, digestPages, noted);

  const repairedRegions = options.repair ? repair(target, noted, { mapFindings, cowFindings, digestPages }) : [];
  return { findings: noted.map((entry) => entry.finding), repairedRegions, regionsChecked };
}

function digestPageFinding(target: ScrubTarget, page: DigestPageProblem): Noted {
  const last = page.firstRegion + page.regionCount - 1;
  return {
    finding: {
      file: target.replica.digestsPath,
      offset: page.offset,
      region: page.firstRegion,
      problem: `page ${page.page} fails its CRC-32 (it holds the digests of regions ${page.firstRegion}..${last}, none of them pending)`,
      repaired: false,
    },
    affected: { first: page.firstRegion, count: page.regionCount },
  };
}

/**
 * Every region once, in order: S against its entry unless pending, P against the
 * same entry unless covered. Regions of a failing digest page are skipped (their
 * entries are unknown; the page's finding covers them). Returns the regions read.
 */
function checkRegions(target: ScrubTarget, failingPages: readonly DigestPageProblem[], noted: Noted[]): number {
  const { replica, regionSize } = target;
  const skipped = new Bitmap(target.regions);
  for (const page of failingPages)
    for (let region = page.firstRegion; region < page.firstRegion + page.regionCount; region++) skipped.set(region);
  let regionsChecked = 0;
  for (let region = 0; region < target.regions; region++) {
    if (skipped.has(region)) continue;
    const checkSecondary = !target.pending(region);
    const checkPrimary = !target.covered(region);
    if (!checkSecondary && !checkPrimary) continue;
    const digest = replica.digestOf(region);
    regionsChecked++;
    if (checkSecondary) {
      const read = crc32(replica.readRegion(region));
      if (read !== digest) {
        noted.push(
          regionFinding(
            replica.imagePath,
            region,
            regionSize,
            `region ${region} of the secondary does not match its digest in ${replica.digestsPath} (CRC-32 ${hex(read)}, the table holds ${hex(digest)})`,
          ),
        );
      }
    }
    if (checkPrimary) {
      const read = crc32(target.readPrimary(region));
      if (read !== digest) {
        noted.push(
          regionFinding(
            target.primaryPath,
            region,
            regionSize,
            `region ${region} of the primary differs from the secondary's digest (CRC-32 ${hex(read)}, the table ` +
              `holds ${hex(digest)}) while no map bit and no COW copy covers it: P and S must agree there`,
          ),
        );
      }
    }
  }
  return regionsChecked;
}

function regionFinding(file: string, region: number, regionSize: number, problem: string): Noted {
  return {
    finding: { file, offset: region * regionSize, region, problem, repaired: false },
    affected: { first: region, count: 1 },
  };
}

function hex(crc: number): string {
  return crc.toString(16).padStart(8, '0');
}

/** The repair, in its durable order; returns the regions marked in X, ascending. */
function repair(
  target: ScrubTarget,
  noted: Noted[],
  found: { mapFindings: TargetFinding[]; cowFindings: TargetFinding[]; digestPages: DigestPageProblem[] },
): number[] {
  const marked = new Bitmap(target.regions);
  for (const { affected } of noted) {
    if (affected === null) continue;
    assert(
      affected.first >= 0 && affected.count >= 0 && affected.first + affected.count <= target.regions,
      `repair range ${affected.first}+${affected.count}`,
    );
    for (let region = affected.first; region < affected.first + affected.count; region++) marked.set(region);
  }
  const regions = marked.regionsSet();
  // X first: whatever the rest of the repair does, or a crash inside it, the next
  // cycle resends these regions from P.
  if (regions.length > 0) target.markNext(regions);
  if (found.digestPages.length > 0) target.replica.rewriteDigestPages(found.digestPages.map((page) => page.page));
  if (found.mapFindings.length > 0) target.rewriteMapPages();
  for (const finding of found.cowFindings) if (finding.region !== null) target.dropCopy(finding.region);
  for (const entry of noted) {
    if (entry.affected === null) continue;
    entry.finding.repaired = true;
    if (entry.droppedCopy) {
      entry.finding.problem +=
        `; copy dropped: region ${entry.finding.region} goes out with the primary's data in this cycle, so it ` +
        `is not point-in-time for this one cycle`;
    }
  }
  return regions;
}
