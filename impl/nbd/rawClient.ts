// A raw NBD client for the protocol tests (no tests here): the handshake and
// requests byte by byte, replies read as they come.

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import * as nbd from './protocol.ts';

export class RawClient {
  readonly socket: Socket;
  private buffer = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  closed = false;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => {});
  }

  static open<T extends RawClient>(this: new (socket: Socket) => T, port: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new this(socket)));
      socket.once('error', reject);
    });
  }

  async read(count: number): Promise<Buffer> {
    while (this.buffer.length < count) {
      if (this.closed) throw new Error(`connection closed with ${this.buffer.length} of ${count} bytes`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = null;
    }
    const bytes = this.buffer.subarray(0, count);
    this.buffer = this.buffer.subarray(count);
    return bytes;
  }

  async waitClosed(): Promise<void> {
    while (!this.closed) {
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = null;
    }
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  async greeting(clientFlags = nbd.FLAG_C_FIXED_NEWSTYLE | nbd.FLAG_C_NO_ZEROES): Promise<void> {
    const greeting = await this.read(18);
    assert.equal(greeting.readBigUInt64BE(0), nbd.NBDMAGIC);
    assert.equal(greeting.readBigUInt64BE(8), nbd.IHAVEOPT);
    assert.equal(greeting.readUInt16BE(16), nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES);
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(clientFlags);
    this.write(flags);
  }

  option(option: number, data: Buffer = Buffer.alloc(0)): void {
    const header = Buffer.alloc(16);
    header.writeBigUInt64BE(nbd.IHAVEOPT, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(data.length, 12);
    this.write(Buffer.concat([header, data]));
  }

  async optionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const header = await this.read(20);
    assert.equal(header.readBigUInt64BE(0), nbd.OPTION_REPLY_MAGIC);
    const data = Buffer.from(await this.read(header.readUInt32BE(16)));
    return { option: header.readUInt32BE(8), type: header.readUInt32BE(12), data };
  }

  goData(name: string, infos: number[] = []): Buffer {
    const nameBytes = Buffer.from(name);
    const data = Buffer.alloc(4 + nameBytes.length + 2 + 2 * infos.length);
    data.writeUInt32BE(nameBytes.length, 0);
    nameBytes.copy(data, 4);
    data.writeUInt16BE(infos.length, 4 + nameBytes.length);
    infos.forEach((info, index) => {
      data.writeUInt16BE(info, 4 + nameBytes.length + 2 + 2 * index);
    });
    return data;
  }

  /** Handshake to transmission with NBD_OPT_GO; returns the export size. */
  async go(): Promise<bigint> {
    await this.greeting();
    this.option(nbd.OPT_GO, this.goData(''));
    const info = await this.optionReply();
    assert.equal(info.type, nbd.REP_INFO);
    assert.equal(info.data.readUInt16BE(0), nbd.INFO_EXPORT);
    const ack = await this.optionReply();
    assert.equal(ack.type, nbd.REP_ACK);
    return info.data.readBigUInt64BE(2);
  }

  request(
    type: number,
    offset: number,
    length: number,
    payload?: Buffer,
    cookie = 7n,
    flags = 0,
    magic = nbd.REQUEST_MAGIC,
  ): void {
    const header = nbd.encodeRequest({ type, offset, length, cookie, flags, magic });
    this.write(payload === undefined ? header : Buffer.concat([header, payload]));
  }

  async reply(dataLength = 0): Promise<{ error: number; cookie: bigint; data: Buffer }> {
    const header = await this.read(16);
    assert.equal(header.readUInt32BE(0), nbd.SIMPLE_REPLY_MAGIC);
    const error = header.readUInt32BE(4);
    const data = error === 0 && dataLength > 0 ? Buffer.from(await this.read(dataLength)) : Buffer.alloc(0);
    return { error, cookie: header.readBigUInt64BE(8), data };
  }
}
