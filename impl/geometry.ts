// The shape of a volume: `regions` regions of `regionSize` bytes, and the bounds
// every other file relies on (offsets stay exact JavaScript integers, a region
// fits in one Buffer, the maps and the COW index fit in memory).

import { CowmapError } from './errors.ts';

export const sectorSize = 512;
export const regionsMax = 1 << 24;
export const regionSizeMax = 1 << 26;
/**
 * 2^42 bytes (4 TiB). Every byte offset is an exact integer with room to spare,
 * and every file of a volume fits the file size limit of common file systems:
 * ext4 with 4 KiB blocks stops at 16 TiB - 4 KiB, so at the old bound of 2^44 the
 * COW file (its index plus a slot per region) could not be made (EFBIG, after
 * other files were already written). At 2^42 the COW file is below 4 TiB + 1 GiB.
 */
export const volumeSizeMax = 2 ** 42;

export interface Geometry {
  readonly regions: number;
  readonly regionSize: number;
}

/** Why the geometry is out of bounds, or null when it is fine. */
export function geometryProblem(geometry: Geometry): string | null {
  const { regions, regionSize } = geometry;
  if (!Number.isSafeInteger(regions) || regions < 1 || regions > regionsMax) {
    return `regions must be an integer in 1..${regionsMax}, got ${regions}`;
  }
  if (
    !Number.isSafeInteger(regionSize) ||
    regionSize < sectorSize ||
    regionSize > regionSizeMax ||
    regionSize % sectorSize !== 0
  ) {
    return `regionSize must be a multiple of ${sectorSize} in ${sectorSize}..${regionSizeMax}, got ${regionSize}`;
  }
  if (regions * regionSize > volumeSizeMax) {
    return `${regions} regions of ${regionSize} bytes exceed the volume size limit of ${volumeSizeMax} bytes`;
  }
  return null;
}

/** Throws E_SIZE unless the geometry is within bounds (docs/protocol.md section 2: bad geometry at creation). */
export function checkGeometry(geometry: Geometry): void {
  const problem = geometryProblem(geometry);
  if (problem !== null) throw new CowmapError('E_SIZE', `create: ${problem}`);
}

export function volumeSize(geometry: Geometry): number {
  return geometry.regions * geometry.regionSize;
}

/** One bit per region, region r in byte r >> 3, bit r & 7 (least significant first). */
export function mapSize(regions: number): number {
  return Math.ceil(regions / 8);
}

export function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}
