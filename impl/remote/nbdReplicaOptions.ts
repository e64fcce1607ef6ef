// What NbdReplica (impl/remote/nbdReplica.ts) is made with: its link's options, and
// where the volume stood at open.

import type { LinkOptions } from './linkOptions.ts';
import type { RemoteLinkFactory } from './remoteLink.ts';

export interface NbdReplicaOptions {
  /** The link's timeouts and retries; linkOptionsDefault for what is not given. */
  link?: Partial<LinkOptions>;
  /** Tests put an in-memory export here; the NBD client in a worker thread by default. */
  linkFactory?: RemoteLinkFactory;
}

export interface NbdReplicaOpenOptions extends NbdReplicaOptions {
  /** Nothing written or synced, locally or remotely (a read-only open of the volume). */
  readOnly?: boolean;
  /** Sync DIR/remote-digests before reading it, as open does every file of the volume. */
  syncAtOpen?: boolean;
}

/** Where the volume stood at open: its metadata's cycle and phase. */
export interface OpenedAt {
  cycle: number;
  replicating: boolean;
}
