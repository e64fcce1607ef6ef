// A hand-written NBD client for the tests of structured replies and metadata contexts
// (NetworkBlockDevice doc/proto.md): it sends options and requests byte by byte as the
// spec lays them out and decodes option replies, simple replies and structured reply
// chunks itself, so that it checks the server's encodings instead of trusting them.
// One exchange at a time. Test-only: nothing outside *.test.ts imports this file.

import assert from 'node:assert/strict';
import * as nbd from './protocol.ts';
import { RawClient } from './rawClient.ts';

export interface OptionReply {
  readonly option: number;
  readonly type: number;
  readonly data: Buffer;
}

/** One reply message of the transmission phase: a simple reply, or one structured chunk. */
export type ReplyMessage =
  | { readonly kind: 'simple'; readonly error: number; readonly cookie: bigint }
  | {
      readonly kind: 'chunk';
      readonly flags: number;
      readonly type: number;
      readonly cookie: bigint;
      readonly payload: Buffer;
    };

export class StructuredTestClient extends RawClient {
  /** Connects, checks the greeting and sends the client flags (fixed newstyle, no zeroes). */
  static async connect(port: number): Promise<StructuredTestClient> {
    const client = await StructuredTestClient.open(port);
    await client.greeting();
    return client;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Every reply to one option up to and including its ACK or error. */
  async optionReplies(): Promise<OptionReply[]> {
    const replies: OptionReply[] = [];
    for (;;) {
      const reply = await this.optionReply();
      replies.push(reply);
      if (reply.type === nbd.REP_ACK || reply.type >= 0x80000000) return replies;
    }
  }

  /** Sends an option and returns its replies. */
  async ask(option: number, data: Buffer = Buffer.alloc(0)): Promise<OptionReply[]> {
    this.option(option, data);
    return this.optionReplies();
  }

  /** NBD_OPT_GO for `name` (after connect, which did the greeting); returns the export size. */
  async goTo(name: string): Promise<bigint> {
    const nameBytes = Buffer.from(name);
    const data = Buffer.alloc(4 + nameBytes.length + 2);
    data.writeUInt32BE(nameBytes.length, 0);
    nameBytes.copy(data, 4);
    const replies = await this.ask(nbd.OPT_GO, data);
    assert.equal(replies.at(-1)!.type, nbd.REP_ACK, 'NBD_OPT_GO succeeds');
    const exportInfo = replies.find((reply) => reply.type === nbd.REP_INFO && reply.data.readUInt16BE(0) === 0);
    assert.ok(exportInfo !== undefined, 'NBD_INFO_EXPORT before the ACK');
    return exportInfo.data.readBigUInt64BE(2);
  }

  /** A request with the cookie and flags first (RawClient.request has them last). */
  send(type: number, offset: number, length: number, cookie: bigint, flags = 0, payload?: Buffer): void {
    this.request(type, offset, length, payload, cookie, flags);
  }

  /** One reply message; a simple reply to a READ must be read with `simpleDataLength`. */
  async message(simpleDataLength = 0): Promise<ReplyMessage & { data?: Buffer }> {
    const magic = (await this.read(4)).readUInt32BE(0);
    if (magic === nbd.SIMPLE_REPLY_MAGIC) {
      const rest = await this.read(12);
      const error = rest.readUInt32BE(0);
      const data = error === 0 && simpleDataLength > 0 ? await this.read(simpleDataLength) : undefined;
      return { kind: 'simple', error, cookie: rest.readBigUInt64BE(4), ...(data === undefined ? {} : { data }) };
    }
    assert.equal(magic, nbd.STRUCTURED_REPLY_MAGIC, `reply magic 0x${magic.toString(16)}`);
    const rest = await this.read(16);
    const payload = await this.read(rest.readUInt32BE(12));
    return {
      kind: 'chunk',
      flags: rest.readUInt16BE(0),
      type: rest.readUInt16BE(2),
      cookie: rest.readBigUInt64BE(4),
      payload,
    };
  }

  /** The chunks of one structured reply, up to the one with DONE; a simple reply ends it too. */
  async structuredReply(): Promise<ReplyMessage[]> {
    const messages: ReplyMessage[] = [];
    for (;;) {
      const message = await this.message();
      messages.push(message);
      if (message.kind === 'simple' || (message.flags & nbd.REPLY_FLAG_DONE) !== 0) return messages;
    }
  }
}

/** The data of NBD_OPT_LIST_META_CONTEXT / SET_META_CONTEXT for `exportName` and `queries`. */
export function metaContextData(exportName: string, queries: readonly string[]): Buffer {
  const string = (text: string): Buffer => {
    const bytes = Buffer.from(text);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  const count = Buffer.alloc(4);
  count.writeUInt32BE(queries.length);
  return Buffer.concat([string(exportName), count, ...queries.map(string)]);
}

/** The (id, name) pairs of the NBD_REP_META_CONTEXT replies among `replies`. */
export function contextsOf(replies: readonly OptionReply[]): [number, string][] {
  return replies
    .filter((reply) => reply.type === nbd.REP_META_CONTEXT)
    .map((reply) => [reply.data.readUInt32BE(0), reply.data.subarray(4).toString('utf8')]);
}

/** The context id and the (length, flags) extents of a BLOCK_STATUS chunk's payload. */
export function decodeBlockStatus(payload: Buffer): { contextId: number; extents: [number, number][] } {
  assert.ok(payload.length >= 12 && (payload.length - 4) % 8 === 0, `BLOCK_STATUS payload of ${payload.length} bytes`);
  const extents: [number, number][] = [];
  for (let at = 4; at < payload.length; at += 8) extents.push([payload.readUInt32BE(at), payload.readUInt32BE(at + 4)]);
  return { contextId: payload.readUInt32BE(0), extents };
}

/** The error and message of an ERROR chunk's payload. */
export function decodeError(payload: Buffer): { errno: number; message: string } {
  const length = payload.readUInt16BE(4);
  assert.equal(payload.length, 6 + length, 'an ERROR payload is the error, the length and the message');
  return { errno: payload.readUInt32BE(0), message: payload.subarray(6).toString('utf8') };
}
