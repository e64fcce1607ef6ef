// Seeded choice of the regions a repetition dirties, and their new content:
// shared by the cycle benchmark and its child process (the memory benchmark).

import { Prng } from '../harness/prng.ts';
import { SeededBytes } from './seededBytes.ts';
import { pageBytes as mapPageBytes, regionsPerPage as mapPageRegions } from '../impl/mapPage.ts';

/** `count` distinct regions of 0..regions-1, seeded, ascending (a partial Fisher-Yates shuffle). */
export function pickRegions(regions: number, count: number, seed: number): number[] {
  if (!Number.isInteger(count) || count < 0 || count > regions)
    throw new RangeError(`pickRegions: ${count} of ${regions}`);
  const prng = new Prng(seed);
  const order = new Int32Array(regions);
  for (let index = 0; index < regions; index++) order[index] = index;
  for (let index = 0; index < count; index++) {
    const other = index + prng.nextInt(regions - index);
    const value = order[index]!;
    order[index] = order[other]!;
    order[other] = value;
  }
  return Array.from(order.subarray(0, count)).sort((a, b) => a - b);
}

/** The new content of each picked region (seeded), in the order of `regions`. */
export function dirtyContent(regionList: readonly number[], regionSize: number, seed: number): Uint8Array[] {
  const bytes = new SeededBytes(seed);
  return regionList.map(() => bytes.next(regionSize));
}

/**
 * The map pages that a set of regions touches, in bytes, and the runs of
 * consecutive pages (completion rewrites each run of pages with one write;
 * docs/format.md, "DIR/map0, DIR/map1").
 */
export function mapFootprint(regionList: readonly number[]): { bytes: number; runs: number } {
  const pages = [...new Set(regionList.map((region) => Math.floor(region / mapPageRegions)))].sort((a, b) => a - b);
  let runs = 0;
  for (let index = 0; index < pages.length; index++) {
    if (index === 0 || pages[index]! !== pages[index - 1]! + 1) runs++;
  }
  return { bytes: pages.length * mapPageBytes, runs };
}
