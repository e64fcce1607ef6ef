// What the far side holds, as the fault schedules check it: the image and control
// block of a plain export (nbdkit file's file) and the consistent image of a
// `cowmap receive` store, read from copies (the proxy's durable snapshot, or the
// live files copied first) so that nothing of the running server is touched.

import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import { ReceiverStore } from '../../impl/receive/receiverStore.ts';
import { type ControlBlock, controlBlockSize, decodeControlBlock } from '../../impl/remote/controlBlock.ts';

/** What a copy of the far side holds: its image and its control block (null when not a valid block). */
export interface FarImage {
  readonly image: Uint8Array;
  readonly control: ControlBlock | null;
}

function imageAndControl(bytes: Uint8Array, imageBytes: number): FarImage {
  const decoded = decodeControlBlock(bytes.subarray(imageBytes, imageBytes + controlBlockSize));
  return { image: bytes.subarray(0, imageBytes), control: decoded.kind === 'block' ? decoded.block : null };
}

/** A plain export's file (or its copy): the image, then the control block. */
export function readPlainExport(path: string, imageBytes: number): FarImage {
  return imageAndControl(new Uint8Array(readFileSync(path)), imageBytes);
}

/** The consistent image of a receiver store in `dir`, opened read-only on a copy made in `scratch`. */
export function readReceiverConsistent(dir: string, scratch: string, imageBytes: number): FarImage {
  const copy = mkdtempSync(join(scratch, 'consistent-'));
  try {
    cpSync(dir, copy, { recursive: true });
    const store = ReceiverStore.open(new NodeStorage(), copy, { readOnly: true });
    try {
      return imageAndControl(store.readConsistent(0, imageBytes + controlBlockSize), imageBytes);
    } finally {
      store.close();
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

/** The first region where two images differ, or null when they are equal. */
export function firstDifferentRegion(actual: Uint8Array, expected: Uint8Array, regionSize: number): number | null {
  if (Buffer.from(actual).equals(Buffer.from(expected))) return null;
  for (let offset = 0; offset < expected.length; offset += regionSize) {
    const end = offset + regionSize;
    if (!Buffer.from(actual.subarray(offset, end)).equals(Buffer.from(expected.subarray(offset, end))))
      return offset / regionSize;
  }
  return Math.floor(expected.length / regionSize);
}
