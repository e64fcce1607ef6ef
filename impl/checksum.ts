// The two checksums of the on-disk format: CRC-32 (the zlib polynomial, as node:zlib
// computes it) guards each metadata slot, index entry and replica header against
// torn and foreign bytes; SHA-256 names region contents (the preserved copies in
// the COW store, and the digests that `state()` reports, as docs/protocol.md section 6 asks).

import { createHash } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';

export const sha256Bytes = 32;

export function crc32(bytes: Uint8Array): number {
  return zlibCrc32(bytes) >>> 0;
}

export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

/** Never-written bytes: an all-zero metadata slot, map page or COW entry is empty, not damaged. */
export function isAllZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}
