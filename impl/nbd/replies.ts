// The replies of the transmission phase (NetworkBlockDevice doc/proto.md, "Simple
// reply message" and "Structured reply chunk message"). One Replies per connection:
// simple replies until the handshake negotiated structured replies.

import type { Socket } from 'node:net';
import * as nbd from './protocol.ts';

/** One BLOCK_STATUS answer for one negotiated metadata context: its id and its extents. */
export interface ContextExtents {
  readonly contextId: number;
  readonly extents: readonly { readonly length: number; readonly flags: number }[];
}

export class Replies {
  private readonly socket: Socket;
  /** Structured replies were negotiated (NBD_OPT_STRUCTURED_REPLY). */
  structured = false;

  constructor(socket: Socket) {
    this.socket = socket;
  }

  /** Success with no data (WRITE, FLUSH, TRIM, WRITE_ZEROES, CACHE). */
  done(cookie: Buffer): void {
    this.simple(cookie, 0);
  }

  /** An error reply; `message` is for the log (structured replies may carry it). */
  error(cookie: Buffer, errno: number, _message = ''): void {
    this.simple(cookie, errno);
  }

  /** A successful READ of `data` at `offset`. */
  read(cookie: Buffer, _offset: number, data: Uint8Array): void {
    this.simple(cookie, 0, data);
  }

  /** A successful BLOCK_STATUS: one chunk per context (only with structured replies). */
  blockStatus(_cookie: Buffer, _contexts: readonly ContextExtents[]): void {
    throw new Error('BLOCK_STATUS needs structured replies');
  }

  private simple(cookie: Buffer, error: number, data: Uint8Array | null = null): void {
    const header = Buffer.alloc(nbd.SIMPLE_REPLY_HEADER_SIZE);
    header.writeUInt32BE(nbd.SIMPLE_REPLY_MAGIC, 0);
    header.writeUInt32BE(error, 4);
    cookie.copy(header, 8);
    this.socket.write(header);
    if (data !== null && data.length > 0) this.socket.write(data);
  }
}
