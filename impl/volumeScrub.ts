// The volume's side of `cowmap scrub` (docs/format.md, "Scrub"): a ScrubTarget
// (impl/scrub.ts) built on the volume's own files. It reports what the metadata,
// the maps and the COW store find wrong with themselves, says which regions are
// covered or pending, and makes the repairs durable: X bits with one sync per map,
// failing map pages rewritten from the bits in memory (which mirror what was
// durable plus the deferred bits), COW copies that fail their digest dropped.

import type { CowStore } from './cowStore.ts';
import type { MapFile } from './mapFile.ts';
import { pageBytes } from './mapPage.ts';
import type { MetadataStore, Phase } from './metadata.ts';
import type { RegionFile } from './regionFile.ts';
import type { Replica } from './replica.ts';
import type { ScrubTarget, TargetFinding } from './scrub.ts';

/** What the target reads of the volume; getters, since the phase and the roles of the maps change. */
export interface ScrubbedVolume {
  readonly dir: string;
  readonly regions: number;
  readonly regionSize: number;
  readonly phase: Phase;
  readonly cycle: number;
  readonly metadata: MetadataStore;
  readonly maps: readonly [MapFile, MapFile];
  readonly currentMap: MapFile;
  readonly nextMap: MapFile;
  readonly cow: CowStore;
  readonly primary: RegionFile;
  readonly replica: Replica;
  isPending(region: number): boolean;
}

export function volumeScrubTarget(volume: ScrubbedVolume): ScrubTarget {
  const replicating = (): boolean => volume.phase === 'replicating';
  return {
    dir: volume.dir,
    regions: volume.regions,
    regionSize: volume.regionSize,
    phase: volume.phase,
    metadataFindings: () => volume.metadata.scrub(),
    mapFindings: () => volume.maps.flatMap((map) => mapFindings(map)),
    cowFindings: () => volume.cow.scrub(replicating() ? volume.cycle : null),
    primaryPath: volume.primary.file.path,
    readPrimary: (region) => volume.primary.readRegion(region),
    replica: volume.replica,
    covered: (region) => volume.nextMap.has(region) || (replicating() && volume.currentMap.has(region)) || volume.cow.holds(region),
    pending: (region) => volume.isPending(region),
    markNext: (regions) => volume.nextMap.setMany(regions),
    rewriteMapPages: () => {
      for (const map of volume.maps) {
        for (const finding of map.scrub()) map.rewritePage(pageOfFinding(finding.offset));
      }
    },
    dropCopy: (region) => volume.cow.dropCopy(region),
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
