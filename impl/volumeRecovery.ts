// What create and open share after the parts are open: the rules of a volume class
// (its static members, which a mutant's subclass overrides) and recovery on the
// parts, closing them on any failure.

import type { MapFile } from './mapFile.ts';
import type { OpenRepairs } from './recoveryChecks.ts';
import type { Geometry } from './geometry.ts';
import type { ReplicatedVolume } from './replicatedVolume.ts';
import { asVolumeError, closeParts, type VolumeParts, type VolumeRules } from './volumeParts.ts';

export type VolumeClass<T> = new (parts: VolumeParts) => T;

/** The rules of a volume class (its static members; a mutant's subclass overrides some). */
export function volumeRules(volumeClass: unknown): VolumeRules {
  const rules = volumeClass as typeof ReplicatedVolume & {
    syncFilesAtOpen: boolean;
    refusesExistingVolume: boolean;
    honoursLock: boolean;
  };
  return {
    geometryProblem: (geometry) =>
      (rules as unknown as { geometryProblem(g: Geometry): string | null }).geometryProblem(geometry),
    refusesExistingVolume: rules.refusesExistingVolume,
    honoursLock: rules.honoursLock,
    syncFilesAtOpen: rules.syncFilesAtOpen,
  };
}

/** Builds the volume on its parts and runs recovery; on any failure the parts are closed and the lock released. */
export function recoverParts<T extends ReplicatedVolume>(
  volumeClass: VolumeClass<T>,
  parts: VolumeParts,
  where: string,
  missingAs: 'E_IO' | 'E_CORRUPT',
  repairs: OpenRepairs | null = null,
): T {
  try {
    const volume = new volumeClass(parts);
    const internals = volume as unknown as { recover(): void; openRepairs: OpenRepairs | null; nextMap: MapFile };
    if (repairs !== null) {
      repairs.nextMap = () => internals.nextMap;
      internals.openRepairs = repairs;
    }
    try {
      internals.recover();
    } finally {
      internals.openRepairs = null;
    }
    return volume;
  } catch (error) {
    closeParts(parts);
    throw asVolumeError(error, where, missingAs);
  }
}
