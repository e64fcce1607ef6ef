// One page of a map file (docs/format.md, "DIR/map0, DIR/map1"): 4096 bytes, the
// bits of 32640 regions, the metadata sequence in force when the page was written,
// and a CRC-32. A page is the unit of every map write, so a torn or rotted map is
// caught page by page instead of silently skipping a region forever.

import { assert } from './assert.ts';
import { crc32, isAllZero } from './checksum.ts';

export const pageBytes = 4096;
/** Bytes of bits in a page: regions r of the page in byte (r >> 3), bit (r & 7). */
export const pageBitBytes = 4080;
export const regionsPerPage = pageBitBytes * 8;
const pageOffsets = { stamp: 4080, reserved: 4088, checksum: 4092 } as const;

/** The size of a map file: whole pages. */
export function mapFileSize(regions: number): number {
  return mapPageCount(regions) * pageBytes;
}

export function mapPageCount(regions: number): number {
  return Math.ceil(regions / regionsPerPage);
}

/** A page of `bits` (at most pageBitBytes bytes) stamped with `sequence`, with its CRC. */
export function encodePage(bits: Uint8Array, sequence: number): Uint8Array {
  assert(bits.length <= pageBitBytes, `${bits.length} bytes of bits in a page`);
  assert(Number.isSafeInteger(sequence) && sequence >= 0, `page stamp ${sequence}`);
  const page = new Uint8Array(pageBytes);
  page.set(bits, 0);
  const view = new DataView(page.buffer);
  view.setBigUint64(pageOffsets.stamp, BigInt(sequence), true);
  view.setUint32(pageOffsets.checksum, crc32(page.subarray(0, pageOffsets.checksum)), true);
  return page;
}

export type PageCheck = { valid: true; stamp: number } | { valid: false; problem: string };

/**
 * Whether a page read from disk is one this build wrote: its CRC holds and its
 * reserved bytes are zero, or it is all zeros (never written: valid and clear,
 * stamp 0).
 */
export function checkPage(page: Uint8Array): PageCheck {
  assert(page.length === pageBytes, 'page size');
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const stored = view.getUint32(pageOffsets.checksum, true);
  if (stored !== crc32(page.subarray(0, pageOffsets.checksum))) {
    if (stored === 0 && isAllZero(page)) return { valid: true, stamp: 0 };
    return { valid: false, problem: 'fails its CRC-32' };
  }
  if (view.getUint32(pageOffsets.reserved, true) !== 0) return { valid: false, problem: 'has reserved bytes set' };
  const stamp = view.getBigUint64(pageOffsets.stamp, true);
  if (stamp > BigInt(Number.MAX_SAFE_INTEGER)) return { valid: false, problem: `has stamp ${stamp}` };
  return { valid: true, stamp: Number(stamp) };
}
