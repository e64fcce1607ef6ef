// The volume's side of `cowmap scrub` (docs/format.md, "Scrub"): a ScrubTarget
// (impl/scrub.ts) built on the volume's own files. It reports what the metadata,
// the maps and the COW store find wrong with themselves, says which regions are
// covered or pending, and makes the repairs durable: X bits with one sync per map,
// failing map pages rewritten from the bits in memory (which mirror what was
// durable plus the deferred bits), COW copies that fail their digest dropped.

import type { MapFile } from './mapFile.ts';
import { pageBytes } from './mapPage.ts';
import type { Phase } from './metadata.ts';
import type { RecoveryFiles } from './recoveryChecks.ts';
import type { ScrubTarget, TargetFinding } from './scrub.ts';

/** What the target reads of the volume; getters, since the phase and the roles of the maps change. */
export interface ScrubbedVolume {
  /** The volume's files, as recovery sees them (the map roles read when asked). */
  readonly files: RecoveryFiles;
  readonly dir: string;
  readonly regions: number;
  readonly regionSize: number;
  readonly phase: Phase;
  readonly cycle: number;
  isPending(region: number): boolean;
}

export function volumeScrubTarget(volume: ScrubbedVolume): ScrubTarget {
  const replicating = (): boolean => volume.phase === 'replicating';
  return {
    dir: volume.dir,
    regions: volume.regions,
    regionSize: volume.regionSize,
    phase: volume.phase,
    metadataFindings: () => volume.files.metadata.scrub(),
    mapFindings: () => volume.files.maps.flatMap((map) => mapFindings(map)),
    cowFindings: () => volume.files.cow.scrub(replicating() ? volume.cycle : null),
    primaryPath: volume.files.primary.file.path,
    readPrimary: (region) => volume.files.primary.readRegion(region),
    replica: volume.files.replica,
    covered: (region) =>
      volume.files.nextMap.has(region) ||
      (replicating() && volume.files.currentMap.has(region)) ||
      volume.files.cow.holds(region),
    pending: (region) => volume.isPending(region),
    markNext: (regions) => volume.files.nextMap.setMany(regions),
    rewriteMapPages: () => {
      for (const map of volume.files.maps) {
        for (const finding of map.scrub()) map.rewritePage(pageOfFinding(finding.offset));
      }
    },
    dropCopy: (region) => volume.files.cow.dropCopy(region),
  };
}

/** A failing page's bits cannot be trusted: --repair marks every region of the page. */
function mapFindings(map: MapFile): TargetFinding[] {
  return map.scrub().map((finding) => {
    const { first, end } = map.regionsOfPage(pageOfFinding(finding.offset));
    return { ...finding, affected: { first, count: end - first } };
  });
}

function pageOfFinding(offset: number): number {
  return Math.floor(offset / pageBytes);
}
