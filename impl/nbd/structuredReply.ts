// The structured reply chunk (NetworkBlockDevice doc/proto.md, "Structured reply
// chunk message" and "Structured reply types"): the header, and the payloads of the
// chunk types the export sends (NONE, OFFSET_DATA, BLOCK_STATUS, ERROR).

import { assert } from '../assert.ts';
import * as nbd from './protocol.ts';

/** One extent of a BLOCK_STATUS chunk: a nonzero length in bytes and the context's status flags. */
export interface Extent {
  readonly length: number;
  readonly flags: number;
}

/** The 20-byte header of a chunk whose payload is `payloadLength` bytes. */
export function chunkHeader(cookie: Buffer, type: number, flags: number, payloadLength: number): Buffer {
  const header = Buffer.alloc(nbd.STRUCTURED_REPLY_HEADER_SIZE);
  header.writeUInt32BE(nbd.STRUCTURED_REPLY_MAGIC, 0);
  header.writeUInt16BE(flags, 4);
  header.writeUInt16BE(type, 6);
  cookie.copy(header, 8);
  header.writeUInt32BE(payloadLength, 16);
  return header;
}

/** The first 8 bytes of an OFFSET_DATA payload (the data follows): the export offset of the data. */
export function offsetDataPrefix(offset: number): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64BE(BigInt(offset), 0);
  return prefix;
}

/**
 * The payload of an ERROR chunk: the error, the message's length, the message. The
 * message is cut to the spec's 4096 bytes, at a character boundary.
 */
export function errorPayload(errno: number, message: string): Buffer {
  assert(errno !== 0, 'an error chunk carries a nonzero error');
  let text = Buffer.from(message, 'utf8');
  if (text.length > nbd.STRING_BYTES_MAX) {
    let end = nbd.STRING_BYTES_MAX;
    // Back up over UTF-8 continuation bytes (10xxxxxx) so that no character is cut.
    while (end > 0 && (text[end]! & 0xc0) === 0x80) end--;
    text = text.subarray(0, end);
  }
  const payload = Buffer.alloc(6 + text.length);
  payload.writeUInt32BE(errno, 0);
  payload.writeUInt16BE(text.length, 4);
  text.copy(payload, 6);
  return payload;
}

/** The payload of a BLOCK_STATUS chunk: the context id, then each extent's length and flags. */
export function blockStatusPayload(contextId: number, extents: readonly Extent[]): Buffer {
  assert(extents.length > 0, 'a BLOCK_STATUS chunk has at least one extent');
  const payload = Buffer.alloc(4 + 8 * extents.length);
  payload.writeUInt32BE(contextId, 0);
  extents.forEach((extent, index) => {
    assert(extent.length > 0 && extent.length <= 0xffffffff, `extent length ${extent.length} out of 1..2^32-1`);
    payload.writeUInt32BE(extent.length, 4 + 8 * index);
    payload.writeUInt32BE(extent.flags, 8 + 8 * index);
  });
  return payload;
}
