// A byte range of an image to standard output a piece at a time (cowmap read): never
// more than about `pieceBytes` in memory, whatever the length asked for.

import { writeStdout } from '../stdout.ts';

/** The most a piece of a byte range holds (rounded up to whole regions at its end). */
export const pieceBytes = 8 << 20;

/**
 * Writes `length` bytes at `offset` to standard output, read by `read` in pieces
 * that end on region boundaries (so that each region is read once). The range is
 * checked by the caller.
 */
export async function streamPieces(
  offset: number,
  length: number,
  regionSize: number,
  read: (at: number, bytes: number) => Uint8Array,
): Promise<void> {
  const end = offset + length;
  let position = offset;
  while (position < end) {
    const pieceEnd = Math.min(end, Math.ceil((position + pieceBytes) / regionSize) * regionSize);
    await writeStdout(read(position, pieceEnd - position));
    position = pieceEnd;
  }
}
