// Frames the simple replies of the transmission phase (doc/proto.md, "Simple reply
// message") out of the received bytes. A simple reply does not say whether data
// follows: only a successful READ's does, of the length the READ asked for, so the
// reader asks the caller what each cookie is. Anything else (another magic, a cookie
// no request has) breaks the protocol: the stream cannot be framed any further.

import type { ByteQueue } from '../byteQueue.ts';
import * as nbd from '../protocol.ts';
import { NbdLinkError } from './nbdErrors.ts';

export interface SimpleReply {
  readonly cookie: bigint;
  /** The NBD error value; 0 for success. */
  readonly errno: number;
  /** A successful READ's data; empty otherwise. */
  readonly data: Buffer;
}

/** The data length a reply to `cookie` carries on success (a READ's length, else 0), or undefined for no such request. */
export type ReplyDataLengthOf = (cookie: bigint) => number | undefined;

export class ReplyReader {
  constructor(
    private readonly input: ByteQueue,
    private readonly dataLengthOf: ReplyDataLengthOf,
  ) {}

  /** The next whole reply, or null until more bytes arrive; a protocol violation throws NbdLinkError. */
  next(): SimpleReply | null {
    if (this.input.length < nbd.SIMPLE_REPLY_HEADER_SIZE) return null;
    const header = this.input.peek(nbd.SIMPLE_REPLY_HEADER_SIZE);
    const magic = header.readUInt32BE(0);
    if (magic === nbd.STRUCTURED_REPLY_MAGIC)
      throw new NbdLinkError('a structured reply, which this client never negotiated');
    if (magic !== nbd.SIMPLE_REPLY_MAGIC) throw new NbdLinkError(`a reply with the magic 0x${magic.toString(16)}`);
    const errno = header.readUInt32BE(4);
    const cookie = header.readBigUInt64BE(8);
    const dataLength = this.dataLengthOf(cookie);
    if (dataLength === undefined) throw new NbdLinkError(`a reply to cookie ${cookie}, which no request in flight has`);
    const length = errno === 0 ? dataLength : 0;
    if (this.input.length < nbd.SIMPLE_REPLY_HEADER_SIZE + length) return null;
    this.input.skip(nbd.SIMPLE_REPLY_HEADER_SIZE);
    return { cookie, errno, data: length === 0 ? emptyData : this.input.take(length) };
  }
}

const emptyData = Buffer.alloc(0);
