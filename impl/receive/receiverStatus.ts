// What a receiver's store reports about itself (`cowmap receive`, `cowmap status DIR2`,
// ReceiverReplica): which volume it belongs to, the last cycle it committed and the
// cycle whose journal is open. Byte layout of what it is read from: docs/format.md,
// "The receiver's files".

import type { ReplicaIdentity } from '../replica.ts';

export interface ReceiverStatus {
  /** The NBD export's size: the image, then the control block (impl/remote/controlBlock.ts). */
  readonly exportSize: number;
  /** The volume the first control block named (its id and geometry), or null before the claim. */
  readonly identity: ReplicaIdentity | null;
  /** The last cycle committed: the consistent image is P@swap of it (INV-DR); null before the claim completed. */
  readonly completedCycle: number | null;
  /** That cycle's swap time from its complete block, ms since the epoch (0 unknown). */
  readonly completedSwapTimeMs: number;
  /** The cycle whose journal is open (its start signal came, its complete signal not yet), or null. */
  readonly runningCycle: number | null;
  /** The bytes the open journal holds (records and their headers); 0 when none is open. */
  readonly journalBytes: number;
}
