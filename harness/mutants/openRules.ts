// Mutants of the protocol's own rules at create and open (docs/adapter.md's
// E_SIZE, E_EXISTS and E_LOCKED): the verify stages never open a volume twice,
// nor a bad geometry, so only conform reaches them.

import { sectorSize, type Geometry } from '../../impl/geometry.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';

/** Accepts any region size from 512 bytes up, a multiple of 512 or not (E_SIZE expected); below 512 it still refuses. */
export class AcceptsUnalignedRegionSize extends ReplicatedVolume {
  protected static override geometryProblem(geometry: Geometry): string | null {
    const { regions, regionSize } = geometry;
    const judged =
      Number.isSafeInteger(regionSize) && regionSize > sectorSize
        ? { regions, regionSize: Math.ceil(regionSize / sectorSize) * sectorSize }
        : geometry;
    return super.geometryProblem(judged);
  }
}

/** Create over an existing volume replaces it with a new, empty one (E_EXISTS expected). */
export class CreatesOverExistingVolume extends ReplicatedVolume {
  protected static override readonly refusesExistingVolume: boolean = false;
}

/** Opens a volume that another live process holds (E_LOCKED expected). */
export class IgnoresLock extends ReplicatedVolume {
  protected static override readonly honoursLock: boolean = false;
}
