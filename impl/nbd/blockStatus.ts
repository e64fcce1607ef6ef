// NBD_CMD_BLOCK_STATUS: the extents of each negotiated metadata context over a
// byte range of the export (NetworkBlockDevice doc/proto.md, "Metadata querying";
// the contexts are in metaContexts.ts).
//
// base:allocation: one extent of the whole range, flags 0 (allocated data). That is
// true: the primary image is a plain file and a TRIM is served as a write of zeros,
// so no range is ever a hole nor known to read as zeros (the spec lets a server
// always report 0).
//
// qemu:dirty-bitmap:cowmap-next / cowmap-current: the next map X and the current map
// C of docs/protocol.md, one bit per region: a region is dirty (flag 1) iff its bit
// is set. Runs of regions with the same bit are one extent; the first and last are
// cut to the requested range. A reply stops after `session.extentsMax` extents (one
// with NBD_CMD_FLAG_REQ_ONE) or after scanning `regionsScannedMax` regions, whichever
// comes first; the client asks again from where it ends (the spec allows a short reply).

import { assert } from '../assert.ts';
import { CowmapError } from '../errors.ts';
import type { ReplicatedVolume } from '../replicatedVolume.ts';
import type { Session } from './handshake.ts';
import { metaContextOfId } from './metaContexts.ts';
import * as nbd from './protocol.ts';
import type { ContextExtents } from './replies.ts';
import type { Extent } from './structuredReply.ts';

/** The most regions one reply looks at per context, so that one request costs bounded time. */
export const regionsScannedMax = 1 << 20;

/**
 * The extents of every context of the session for `length` bytes at `offset`, in
 * context id order. A request without a negotiated context, of length 0, or past the
 * end is bad input (E_BAD_REQUEST / E_RANGE: the engine answers NBD_EINVAL).
 */
export function blockStatusExtents(
  volume: ReplicatedVolume,
  session: Session,
  offset: number,
  length: number,
  flags: number,
): ContextExtents[] {
  if (session.metaContexts.size === 0)
    throw new CowmapError('E_BAD_REQUEST', 'BLOCK_STATUS without a metadata context (NBD_OPT_SET_META_CONTEXT)');
  if (length === 0) throw new CowmapError('E_BAD_REQUEST', 'BLOCK_STATUS of length 0');
  if (offset + length > volume.sizeBytes)
    throw new CowmapError('E_RANGE', `BLOCK_STATUS of ${length} bytes at ${offset} past the end (${volume.sizeBytes})`);
  const extentsMax = (flags & nbd.CMD_FLAG_REQ_ONE) !== 0 ? 1 : session.extentsMax;
  const ids = [...session.metaContexts.keys()].sort((a, b) => a - b);
  return ids.map((contextId) => {
    const context = metaContextOfId(contextId);
    assert(context !== undefined, `the session holds an unknown metadata context id ${contextId}`);
    if (context.kind === 'allocation') return { contextId, extents: [{ length, flags: 0 }] };
    const dirty = context.kind === 'next' ? volume.hasNext.bind(volume) : volume.hasCurrent.bind(volume);
    return { contextId, extents: regionRuns(volume.regionSize, offset, length, extentsMax, dirty) };
  });
}

/**
 * The most bytes the reply to a BLOCK_STATUS of `length` bytes at `offset` can take
 * (every chunk's header and payload), known before it runs: what a buffer budget
 * reserves for it. A dirty-bitmap chunk has at most one extent per region the range
 * touches, within the reply's bounds; base:allocation's has one.
 */
export function blockStatusReplyBytesMax(
  session: Session,
  regionSize: number,
  offset: number,
  length: number,
  flags: number,
): number {
  const extentsMax = (flags & nbd.CMD_FLAG_REQ_ONE) !== 0 ? 1 : session.extentsMax;
  const regionsTouched =
    length === 0 ? 1 : Math.floor((offset + length - 1) / regionSize) - Math.floor(offset / regionSize) + 1;
  const dirtyExtentsMax = Math.min(extentsMax, regionsTouched, regionsScannedMax);
  let bytes = 0;
  for (const id of session.metaContexts.keys()) {
    const extents = metaContextOfId(id)?.kind === 'allocation' ? 1 : dirtyExtentsMax;
    bytes += nbd.STRUCTURED_REPLY_HEADER_SIZE + 4 + 8 * extents;
  }
  return bytes;
}

/**
 * The runs of regions over [offset, offset + length) with the same `dirty` bit, as
 * extents (flag STATE_DIRTY when dirty), at most `extentsMax` of them and at most
 * `regionsScannedMax` regions looked at.
 */
export function regionRuns(
  regionSize: number,
  offset: number,
  length: number,
  extentsMax: number,
  dirty: (region: number) => boolean,
): Extent[] {
  const end = offset + length;
  const extents: { length: number; flags: number }[] = [];
  let at = offset;
  let region = Math.floor(offset / regionSize);
  const lastRegion = region + regionsScannedMax;
  while (at < end && region < lastRegion) {
    const stop = Math.min(end, (region + 1) * regionSize);
    const flags = dirty(region) ? nbd.STATE_DIRTY : 0;
    const previous = extents[extents.length - 1];
    if (previous !== undefined && previous.flags === flags) previous.length += stop - at;
    else if (extents.length === extentsMax) break;
    else extents.push({ length: stop - at, flags });
    at = stop;
    region++;
  }
  return extents;
}
