// The remote replica's view of its link to the far side: a synchronous NBD client of
// one export. The real one runs the asynchronous client in a worker thread
// (impl/remote/workerLink.ts); tests put an in-memory export behind the same interface
// (impl/remote/memoryLink.ts), so that the replica's logic is tested without sockets.

import type { LinkOptions } from './linkOptions.ts';

/** What the handshake learnt of the export. */
export interface RemoteExportInfo {
  readonly exportSize: number;
  readonly readOnly: boolean;
  readonly canFlush: boolean;
  /** The largest payload of one request; writes of merged regions are split to it. */
  readonly payloadMax: number;
  /** Offsets and lengths must be its multiples (NBD_INFO_BLOCK_SIZE's minimum; 1 when none). */
  readonly blockSizeMin: number;
}

/** One WRITE of a batch: `bytes` at byte `offset` of the export. */
export interface RemoteWrite {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/**
 * A fault of the link or of the far side: `kind` link (refused, dropped, timed out,
 * the worker died) or reply (the server answered a request with an error). The
 * connection is dropped either way; the replica reconnects and retries.
 */
export class LinkFault extends Error {
  readonly kind: 'link' | 'reply';

  constructor(kind: 'link' | 'reply', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LinkFault';
    this.kind = kind;
  }
}

/** Every call may throw LinkFault; after one the link is disconnected. */
export interface RemoteLink {
  /** Drops the current connection (if any), connects and negotiates. */
  connect(): RemoteExportInfo;
  readonly connected: boolean;
  read(offset: number, length: number): Uint8Array;
  /**
   * Every write issued at once (the client keeps inFlightMax on the wire); returns when
   * all replied. Takes the bytes: a buffer a write owns whole may be moved to another
   * thread (detached for the caller), so pass fresh buffers.
   */
  writeBatch(writes: readonly RemoteWrite[]): void;
  /** Zeroes [offset, offset + length): WRITE_ZEROES, or writes of zeros when the server lacks it. */
  writeZeroes(offset: number, length: number): void;
  flush(): void;
  /** NBD_CMD_DISC and the end of the connection; quiet (a fault here is ignored). */
  disconnect(): void;
  /** Ends the link for good (the worker too). */
  close(): void;
}

/** Makes the link to an NBD URL (nbd://..., nbd+unix://...). */
export type RemoteLinkFactory = (url: string, options: LinkOptions) => RemoteLink;
