// The integrity checks of recovery (docs/format.md, "Recovery"): what open does
// with a metadata slot, a map page or a COW entry that fails its checksum. Each
// damaged structure is either explained by a crash (a torn update) with evidence
// that nothing is lost, or it is E_CORRUPT naming the file and the region: the
// volume never repairs silently. They need several files at once (both maps, W, P
// and the secondary's digest table), so they live here and not in each file's class.

import { assert } from './assert.ts';
import { crc32 } from './checksum.ts';
import { entrySize, type CowStore } from './cowStore.ts';
import { CowmapError } from './errors.ts';
import type { MapFile } from './mapFile.ts';
import { pageBytes } from './mapPage.ts';
import type { MetadataStore } from './metadata.ts';
import type { RegionFile } from './regionFile.ts';
import type { Replica } from './replica.ts';
import type { ScrubFinding } from './scrubFinding.ts';

/**
 * scrub --repair of a volume that open would refuse (ReplicatedVolume.scrubDir):
 * a problem that marking regions in X deals with (the primary is the source of
 * truth, the next cycle resends them) is handed here instead of thrown. `repair`
 * marks the regions in X durably before anything else about the problem changes.
 */
export interface RecoveryRepair {
  repair(finding: Omit<ScrubFinding, 'repaired'>, regions: readonly number[]): void;
}

export interface RecoveryFiles {
  readonly metadata: MetadataStore;
  readonly maps: readonly [MapFile, MapFile];
  readonly currentMap: MapFile;
  readonly nextMap: MapFile;
  readonly cow: CowStore;
  readonly primary: RegionFile;
  readonly replica: Replica;
}

/**
 * The evidence rule: when a metadata slot failed its checksum (not all zeros), a
 * valid map page or COW entry stamped with a later sequence than the surviving
 * slot's means that a newer record was durable and rot took it: E_CORRUPT, never
 * a silent roll-back. No extra I/O unless a slot failed.
 */
export function checkMetadataEvidence(files: RecoveryFiles): void {
  if (files.metadata.damagedSlot === null) return;
  const candidates: { stamp: number; what: string }[] = files.maps.map((map) => ({
    stamp: map.loadedStampMax,
    what: `a page of ${map.file.path}`,
  }));
  candidates.push({ stamp: files.cow.scanStamps().stampMax, what: `an entry of ${files.cow.file.path}` });
  candidates.sort((a, b) => b.stamp - a.stamp);
  files.metadata.checkEvidence(candidates[0]!);
}

/**
 * The primary region still matches what the secondary's digest table says was
 * last sent: nothing of it can be lost by not resending it.
 */
export function primaryMatchesSecondary(files: RecoveryFiles, region: number): boolean {
  return crc32(files.primary.readRegion(region)) === files.replica.digestOf(region);
}

/**
 * Each map page that failed its CRC keeps its bits only when every region of the
 * page whose bit is clear is covered (by the other map while replicating, or by a
 * copy in W) or unchanged since it was last sent. A torn page update keeps every
 * bit but the ones being set, and those regions are written after their bit is
 * durable, so they are still unchanged: rot that cleared a bit is caught here.
 * While idle only X counts (recovery clears C). `rewrite` (a read-write open)
 * rewrites each kept page with a fresh CRC: crash cleanup, like finishing a completion.
 */
export function checkMapPages(
  files: RecoveryFiles,
  replicating: boolean,
  rewrite: boolean,
  repairs: RecoveryRepair | null = null,
): void {
  const maps = replicating ? [files.currentMap, files.nextMap] : [files.nextMap];
  if (!replicating && repairs !== null) {
    // Idle, C is not used and recovery clears it; scrub --repair still says which page failed.
    for (const { page, problem } of files.currentMap.failedPages()) {
      const { first } = files.currentMap.regionsOfPage(page);
      const cleared = `map page ${page} ${problem}: the current map is not used while idle; cleared`;
      repairs.repair(
        { file: files.currentMap.file.path, offset: page * pageBytes, region: first, problem: cleared },
        [],
      );
    }
  }
  for (const map of maps) {
    const other = map === files.currentMap ? files.nextMap : files.currentMap;
    for (const { page, problem } of map.failedPages()) {
      const { first, end } = map.regionsOfPage(page);
      let lostBit = false;
      for (let region = first; region < end; region++) {
        if (map.has(region)) continue;
        if (replicating && (other.has(region) || files.cow.holds(region))) continue;
        if (primaryMatchesSecondary(files, region)) continue;
        const message =
          `page ${page} ${problem}, and region ${region} has its bit clear while the primary differs from what ` +
          `the secondary was last sent (a lost bit, not a torn update)`;
        if (repairs === null) throw new CowmapError('E_CORRUPT', `open: ${map.file.path} ${message}`);
        // None of the page's bits can be trusted: every region of it is resent.
        const regions: number[] = [];
        for (let marked = first; marked < end; marked++) regions.push(marked);
        repairs.repair({ file: map.file.path, offset: page * pageBytes, region, problem: `map ${message}` }, regions);
        lostBit = true;
        break;
      }
      // scrub --repair says what it rewrites, even a page that lost nothing: the
      // user learns that the file failed its checksum (rot, or a crash's torn update).
      if (!lostBit && repairs !== null) {
        const kept = `map page ${page} ${problem}: a torn update or rot that lost no bit (every clear bit's region is as last sent); rewritten`;
        repairs.repair({ file: map.file.path, offset: page * pageBytes, region: first, problem: kept }, []);
      }
      if (rewrite) map.rewritePage(page);
    }
  }
}

/**
 * A COW entry failing its CRC (not all zeros) counts as empty, which is right for
 * a preserve torn by a crash: the primary was not overwritten yet. When the region
 * is left uncovered (not in C or X, no copy) and the primary differs from the
 * secondary, the entry was a durable copy that rot took: E_CORRUPT.
 */
export function checkDamagedEntries(
  files: RecoveryFiles,
  damagedEntries: readonly number[],
  repairs: RecoveryRepair | null = null,
): void {
  for (const region of damagedEntries) {
    if (files.currentMap.has(region) || files.nextMap.has(region) || files.cow.holds(region)) continue;
    if (primaryMatchesSecondary(files, region)) continue;
    const problem = `the COW index entry fails its CRC-32 and region ${region} is uncovered while the primary differs from the secondary`;
    if (repairs === null)
      throw new CowmapError(
        'E_CORRUPT',
        `open: ${files.cow.file.path} offset ${region * entrySize} region ${region}: ${problem}`,
      );
    repairs.repair({ file: files.cow.file.path, offset: region * entrySize, region, problem }, [region]);
  }
}

/** What a repairing recovery (scrubDir) did: each problem a repaired finding, its regions marked in X durably. */
export class OpenRepairs implements RecoveryRepair {
  readonly findings: ScrubFinding[] = [];
  readonly regions: number[] = [];
  nextMap: (() => MapFile) | null = null;

  repair(finding: Omit<ScrubFinding, 'repaired'>, regions: readonly number[]): void {
    assert(this.nextMap !== null, 'a repair before the volume was built');
    this.nextMap().setMany(regions);
    this.findings.push({ ...finding, repaired: true });
    this.regions.push(...regions);
  }
}
