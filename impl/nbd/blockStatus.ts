// NBD_CMD_BLOCK_STATUS: the extents of each negotiated metadata context over a
// byte range of the export (NetworkBlockDevice doc/proto.md, "Metadata querying").

import type { ReplicatedVolume } from '../replicatedVolume.ts';
import type { Session } from './handshake.ts';
import type { ContextExtents } from './replies.ts';

/** The extents of every context of the session for `length` bytes at `offset`. */
export function blockStatusExtents(
  _volume: ReplicatedVolume,
  _session: Session,
  _offset: number,
  _length: number,
  _flags: number,
): ContextExtents[] {
  throw new Error('BLOCK_STATUS is not negotiated yet');
}
