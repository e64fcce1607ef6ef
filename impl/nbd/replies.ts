// The replies of the transmission phase (NetworkBlockDevice doc/proto.md, "Simple
// reply message" and "Structured reply chunk message"). One Replies per connection:
// simple replies until the handshake negotiated structured replies. With them, a READ
// is one OFFSET_DATA chunk with DONE (NONE with DONE for a zero-length read), an error
// is one ERROR chunk with DONE and its message, a BLOCK_STATUS is one chunk per
// context, and a success without data stays a simple reply (16 bytes instead of a
// 20-byte NONE chunk): the spec allows a simple reply to any command but READ when it
// carries no payload, as QEMU's server does.

import type { Socket } from 'node:net';
import { assert } from '../assert.ts';
import * as nbd from './protocol.ts';
import { blockStatusPayload, chunkHeader, type Extent, errorPayload, offsetDataPrefix } from './structuredReply.ts';

/** One BLOCK_STATUS answer for one negotiated metadata context: its id and its extents. */
export interface ContextExtents {
  readonly contextId: number;
  readonly extents: readonly Extent[];
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

  /** An error reply; structured replies carry `message` (at most 4096 bytes of it) to the client. */
  error(cookie: Buffer, errno: number, message = ''): void {
    // The spec forbids a simple reply to a READ once structured replies are negotiated,
    // even an error one; a structured error is right for every command.
    if (this.structured) this.chunk(cookie, nbd.REPLY_TYPE_ERROR, true, errorPayload(errno, message));
    else this.simple(cookie, errno);
  }

  /** A successful READ of `data` at `offset`. */
  read(cookie: Buffer, offset: number, data: Uint8Array): void {
    if (!this.structured) {
      this.simple(cookie, 0, data);
      return;
    }
    if (data.length === 0) {
      // OFFSET_DATA must carry at least one byte.
      this.chunk(cookie, nbd.REPLY_TYPE_NONE, true);
      return;
    }
    // One chunk with DONE: the data is read whole before the reply starts, so no error can follow it.
    const header = chunkHeader(cookie, nbd.REPLY_TYPE_OFFSET_DATA, nbd.REPLY_FLAG_DONE, 8 + data.length);
    this.socket.write(Buffer.concat([header, offsetDataPrefix(offset)]));
    this.socket.write(data);
  }

  /** A successful BLOCK_STATUS: one chunk per context, the last with DONE (only with structured replies). */
  blockStatus(cookie: Buffer, contexts: readonly ContextExtents[]): void {
    assert(this.structured, 'BLOCK_STATUS is answered only once structured replies are negotiated');
    assert(contexts.length > 0, 'BLOCK_STATUS answers at least one context');
    contexts.forEach((context, index) => {
      const payload = blockStatusPayload(context.contextId, context.extents);
      this.chunk(cookie, nbd.REPLY_TYPE_BLOCK_STATUS, index === contexts.length - 1, payload);
    });
  }

  private chunk(cookie: Buffer, type: number, last: boolean, payload: Buffer = Buffer.alloc(0)): void {
    const header = chunkHeader(cookie, type, last ? nbd.REPLY_FLAG_DONE : 0, payload.length);
    this.socket.write(payload.length > 0 ? Buffer.concat([header, payload]) : header);
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
