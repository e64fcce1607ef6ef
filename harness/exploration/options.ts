// What a crash exploration explores, and the limits of each option: one table of
// bounds, and one check that the explorer runs and that the command line (cowmap
// crashes) can run to word its usage errors.

import { sectorSize } from '../../impl/geometry.ts';
import type { VolumeClass } from '../types.ts';
import type { ExplorationMode } from './choices.ts';
import type { ExplorationStats } from './stats.ts';

export interface ExplorationOptions {
  /** Longest operation sequence. */
  readonly length: number;
  readonly regions: number;
  /** Labels written to each region: `A1`..`A<values>` for region A. */
  readonly values: number;
  /** Bytes per region (a multiple of the sector size); two sectors by default, so that torn writes can mix. */
  readonly regionSize?: number;
  readonly modes?: readonly ExplorationMode[];
  /** Power and torn crash points with at most this many choice bits try every subset; others are sampled. */
  readonly subsetBitsMax?: number;
  /** Seeded subsets tried at a crash point with more than subsetBitsMax choice bits. */
  readonly samplesMax?: number;
  /** The implementation under test (a mutant, for the self-check). */
  readonly volumeClass?: VolumeClass;
  /** Its name in reports and file names. */
  readonly volumeName?: string;
  /** Where a failing case is saved as a trace; null: not saved. */
  readonly failuresDir?: string | null;
  /** Seeds searched for one whose coins make an exhaustive subset's choices. */
  readonly seedSearchMax?: number;
  /**
   * Merge prefixes that reach the same model state and the same implementation
   * state (default true). Off: every accepted prefix is explored on its own (for
   * measuring the reduction; rejected operations change nothing and are still merged).
   */
  readonly dedupePrefixes?: boolean;
  readonly onProgress?: (stats: ExplorationStats) => void;
  /**
   * Torn mode also tears the volume's own records inside a sector, byte by byte
   * (default true; see choices.ts, tearsAt).
   */
  readonly byteTears?: boolean;
  /** The regions the operations write and transfer (default all): a wide geometry explores a few of them. */
  readonly activeRegions?: readonly number[];
  /** Crash inside create at each of its durable calls (default true). */
  readonly createCrashes?: boolean;
  /** Distinct recovery paths (the durable calls a recovery makes) crashed inside at each call (default 8; 0: none). */
  readonly recoveryPathsMax?: number;
  /** After a process crash inside a recovery, crash the next recovery too, at each of its calls (default true). */
  readonly secondRecoveryCrash?: boolean;
  /** Rot: flip a byte of each structure in synced files at chosen prefix states (default true). */
  readonly rot?: boolean;
  /** Prefix states (one per kind, those with the most to lose first) flipped by rot (default 4). */
  readonly rotStatesMax?: number;
  /** Of the rot states, how many also crash scrub --repair after each flip (default 1). */
  readonly scrubStatesMax?: number;
  /** Crash inside scrub --repair after rot (default true; skipped when the volume has no scrub). */
  readonly scrubCrashes?: boolean;
}

export const explorationDefaults = {
  length: 4,
  regions: 2,
  values: 2,
  regionSize: 2 * sectorSize,
  subsetBitsMax: 6,
  samplesMax: 16,
  seedSearchMax: 1 << 20,
  recoveryPathsMax: 8,
  rotStatesMax: 4,
  scrubStatesMax: 1,
  failuresDir: 'traces/failures',
} as const;

/**
 * The integer options' bounds, inclusive. Besides: regionSize is a multiple of
 * the sector size, and the regions written (activeRegions, default all) are 1 to
 * activeRegionCount.max regions below `regions`: a geometry wider than that is
 * explored through a few of its regions.
 */
export const explorationBounds = {
  length: { min: 0, max: 8 },
  regions: { min: 1, max: 1 << 16 },
  activeRegionCount: { min: 1, max: 8 },
  values: { min: 1, max: 8 },
  regionSize: { min: sectorSize, max: 1 << 20 },
  subsetBitsMax: { min: 0, max: 20 },
  samplesMax: { min: 1, max: 1 << 20 },
  recoveryPathsMax: { min: 0, max: 1 << 16 },
  rotStatesMax: { min: 0, max: 1 << 16 },
  scrubStatesMax: { min: 0, max: 1 << 16 },
} as const;

type Bounds = { readonly min: number; readonly max: number };

function integerProblem(name: string, value: number, bounds: Bounds): string | null {
  return Number.isInteger(value) && value >= bounds.min && value <= bounds.max
    ? null
    : `${name} must be an integer in ${bounds.min}..${bounds.max}, got ${value}`;
}

/** The regions the operations write and transfer: those given, else every region. */
export function activeRegionsOf(options: Pick<ExplorationOptions, 'regions' | 'activeRegions'>): number[] {
  return [...(options.activeRegions ?? Array.from({ length: options.regions }, (_, region) => region))];
}

/** Why the options are out of bounds (the first problem, in words), or null when they are fine. */
export function explorationOptionsProblem(options: ExplorationOptions): string | null {
  const bounds = explorationBounds;
  const regionSize = options.regionSize ?? explorationDefaults.regionSize;
  const optional = (name: keyof typeof explorationDefaults & keyof typeof bounds) => () =>
    integerProblem(name, options[name] ?? explorationDefaults[name], bounds[name]);
  // In order, each only once those before it hold (the regions written are listed once `regions` is in bounds).
  const checks: Array<() => string | null> = [
    () => integerProblem('length', options.length, bounds.length),
    () => integerProblem('regions', options.regions, bounds.regions),
    () => {
      const active = activeRegionsOf(options);
      const written = { min: 0, max: options.regions - 1 };
      return (
        integerProblem('the number of regions written', active.length, bounds.activeRegionCount) ??
        active
          .map((region) => integerProblem('a region written', region, written))
          .find((problem) => problem !== null) ??
        null
      );
    },
    () => integerProblem('values', options.values, bounds.values),
    optional('subsetBitsMax'),
    optional('samplesMax'),
    () => integerProblem('regionSize', regionSize, bounds.regionSize),
    () => (regionSize % sectorSize === 0 ? null : `regionSize must be a multiple of ${sectorSize}, got ${regionSize}`),
    optional('recoveryPathsMax'),
    optional('rotStatesMax'),
    optional('scrubStatesMax'),
  ];
  for (const check of checks) {
    const problem = check();
    if (problem !== null) return problem;
  }
  return null;
}

/** Throws a RangeError that says the first problem when the options are out of bounds. */
export function checkExplorationOptions(options: ExplorationOptions): void {
  const problem = explorationOptionsProblem(options);
  if (problem !== null) throw new RangeError(`crash exploration: ${problem}`);
}
