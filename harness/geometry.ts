// The geometries the generated checks run on, and the region indices they pick.
//
// A map keeps one bit per region (docs/protocol.md section 1); an implementation
// stores it in bytes, 64-bit words, 512-byte sectors and 4 KiB pages, and a bug
// at any of those edges shows only for regions past it. So the set has region
// counts just at and just past the edges a cheap run can reach (8 | 9 bits: a
// byte; 64 | 65: a word; 1024 | 1025: sixteen words), beside the degenerate 1,
// 2 and 3, and region sizes of one sector, a page and 64 KiB (bugs past the
// first sector of a region).
//
// What bounds the set is `state`: it reports three digests per region after
// every step, and an implementation reads every region to make them, so a step
// costs about regions * 140 bytes of JSON and 2 * regions * regionSize bytes
// read and hashed. Measured in process against the reference implementation
// (which reads region by region): 1025 x 512 B runs about 21 steps/s, 4097 x
// 512 B (the first count past a 512-byte sector of map bits, 570 KB of JSON a
// state) about 5 steps/s: a run of a few hundred steps would take a minute, so
// it is not in the set. Crossing a 4 KiB page of map bits needs 32769 regions
// (4.6 MB of JSON a state): left to `--regions 32769`.

import fc from 'fast-check';
import type { Geometry } from '../model/types.ts';

const kibibyte = 1024;

/**
 * Every level runs these (region counts across the byte and word edges of a
 * map; region sizes 512 B, 4 KiB, 64 KiB). Ordered so that a run cut short has
 * met the most edges first: past a byte of map bits, past the first sector of a
 * region, past a word; the slow large volume last.
 */
export const conformGeometries: readonly Geometry[] = [
  { regions: 9, regionSize: 512 },
  { regions: 1, regionSize: 64 * kibibyte },
  { regions: 65, regionSize: 4 * kibibyte },
  { regions: 2, regionSize: 4 * kibibyte },
  { regions: 64, regionSize: 512 },
  { regions: 3, regionSize: 512 },
  { regions: 8, regionSize: 4 * kibibyte },
  { regions: 1025, regionSize: 512 },
];

/** Map bit edges: a byte (8 bits), a 64-bit word, sixteen words (1024 bits), a 512-byte sector (4096 bits), a 4 KiB page (32768 bits). */
const bitEdges: readonly number[] = [8, 64, 1024, 4096, 32768];

/**
 * The regions where a map's storage changes unit, in range, sorted, without
 * repeats: 0 and 1, each edge and the region before it, the middle, and the last two.
 */
export function boundaryRegions(regions: number): number[] {
  if (!Number.isInteger(regions) || regions < 1)
    throw new RangeError(`boundaryRegions: regions must be a positive integer, got ${regions}`);
  const candidates = [
    0,
    1,
    ...bitEdges.flatMap((edge) => [edge - 1, edge]),
    Math.floor(regions / 2),
    regions - 2,
    regions - 1,
  ];
  return [...new Set(candidates.filter((region) => region >= 0 && region < regions))].sort((a, b) => a - b);
}

/**
 * A region index over the whole volume: half the time a boundary region, half
 * the time any region. Shrinks towards region 0.
 */
export function regionArbitrary(regions: number): fc.Arbitrary<number> {
  const boundaries = boundaryRegions(regions);
  const anyRegion = fc.integer({ min: 0, max: regions - 1 });
  if (boundaries.length === regions) return anyRegion;
  return fc.oneof(fc.constantFrom(...boundaries), anyRegion);
}

/** Out-of-range indices: just past the last region, and one past 2^31 (a 32-bit signed index overflows there). */
export function outOfRangeRegions(regions: number): number[] {
  return [regions, 2 ** 31];
}

function sizeText(bytes: number): string {
  if (bytes % (1024 * kibibyte) === 0) return `${bytes / (1024 * kibibyte)} MiB`;
  if (bytes % kibibyte === 0) return `${bytes / kibibyte} KiB`;
  return `${bytes} B`;
}

/** "65 x 4096 B": the form the reports list geometries in. */
export function describeGeometry(geometry: Geometry): string {
  return `${geometry.regions} x ${geometry.regionSize} B`;
}

/** The volume's size, for progress lines ("2 MiB"). */
export function describeVolumeSize(geometry: Geometry): string {
  return sizeText(geometry.regions * geometry.regionSize);
}
