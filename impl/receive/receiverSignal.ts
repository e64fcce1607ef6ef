// The control block as a receiver's store reads it (impl/remote/controlBlock.ts,
// docs/format.md "What the signals do"): a write that reaches the control region
// must be one whole valid block at the control offset, of the volume the store
// belongs to; anything else is refused (E_BAD_REQUEST, NBD EINVAL) and changes nothing.

import { CowmapError } from '../errors.ts';
import { type ControlBlock, controlBlockSize, decodeControlBlock, exportSizeOf } from '../remote/controlBlock.ts';
import type { ReplicaIdentity } from '../replica.ts';

/** The block a write of the control region carries; E_BAD_REQUEST when it is not one whole valid block there. */
export function controlBlockOf(offset: number, bytes: Uint8Array, controlOffset: number): ControlBlock {
  if (offset !== controlOffset || bytes.length !== controlBlockSize)
    throw new CowmapError(
      'E_BAD_REQUEST',
      `write at ${offset} of ${bytes.length} bytes: the control region at ${controlOffset} takes only whole control blocks`,
    );
  const decoded = decodeControlBlock(bytes);
  if (decoded.kind !== 'block')
    throw new CowmapError(
      'E_BAD_REQUEST',
      `write of the control block: ${decoded.kind === 'empty' ? 'all zeros' : decoded.problem}`,
    );
  return decoded.block;
}

/**
 * E_BAD_REQUEST unless the block is of the store's volume: the one recorded (null
 * before the first block, which must then make an export of this size).
 */
export function checkBlockIdentity(block: ControlBlock, identity: ReplicaIdentity | null, exportSize: number): void {
  if (identity === null) {
    if (exportSizeOf(block) === exportSize) return;
    throw new CowmapError(
      'E_BAD_REQUEST',
      `control block of ${block.regions} x ${block.regionSize}: an export of ${exportSizeOf(block)} bytes, ` +
        `this one is ${exportSize}`,
    );
  }
  if (!Buffer.from(identity.volumeId).equals(Buffer.from(block.volumeId)))
    throw new CowmapError('E_BAD_REQUEST', 'control block of another volume than the one this store belongs to');
  if (identity.regions !== block.regions || identity.regionSize !== block.regionSize)
    throw new CowmapError(
      'E_BAD_REQUEST',
      `control block of geometry ${block.regions} x ${block.regionSize}, ` +
        `the store's volume is ${identity.regions} x ${identity.regionSize}`,
    );
}
