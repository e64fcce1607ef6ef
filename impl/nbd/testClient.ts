// A small NBD client for the tests (NetworkBlockDevice doc/proto.md): the fixed
// newstyle handshake with NBD_OPT_GO, then pipelined requests, each with its own
// cookie, their simple replies matched by cookie (the server may answer out of
// order). Structured replies are never asked for, so every reply is simple.
// Bounded: at most `inFlightMax` requests wait for their replies (more wait for a
// slot before they are sent), so what is buffered of the input is at most their
// replies. Test-only: nothing outside *.test.ts imports this file.

import { connect, type Socket } from 'node:net';
import { ByteQueue } from './byteQueue.ts';
import * as nbd from './protocol.ts';

/** Where the server listens: a TCP port on 127.0.0.1, or a Unix socket. */
export type NbdAddress = { port: number } | { socketPath: string };

/** A reply with an error: `errno` is the NBD error value (nbd.EINVAL, ...). */
export class NbdReplyError extends Error {
  readonly errno: number;
  constructor(command: string, errno: number) {
    super(`NBD ${command} failed with error ${errno}`);
    this.name = 'NbdReplyError';
    this.errno = errno;
  }
}

export interface NbdReply {
  readonly error: number;
  /** A READ's data (empty for every other command, and for a READ that failed). */
  readonly data: Buffer;
}

interface Pending {
  readonly type: number;
  readonly length: number;
  readonly resolve: (reply: NbdReply) => void;
  readonly reject: (error: Error) => void;
}

export interface NbdTestClientOptions {
  /** The export name sent with NBD_OPT_GO ("" the default export). */
  readonly exportName?: string;
  /** Most requests waiting for their replies at once. */
  readonly inFlightMax?: number;
}

/** Opens a socket to `address`; rejects when the connection is refused. */
export function openSocket(address: NbdAddress): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = 'port' in address ? connect(address.port, '127.0.0.1') : connect({ path: address.socketPath });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export class NbdTestClient {
  readonly socket: Socket;
  /** The export's size and transmission flags, from NBD_INFO_EXPORT. */
  sizeBytes = 0;
  transmissionFlags = 0;
  private readonly input = new ByteQueue();
  private readonly pending = new Map<bigint, Pending>();
  private readonly slotWaiters: (() => void)[] = [];
  private readonly inFlightMax: number;
  private nextCookie = 1n;
  private handshakeWaiter: (() => void) | null = null;
  private inTransmission = false;
  private closedError: Error | null = null;
  /** Resolves when the socket closes (by either side). */
  readonly closed: Promise<void>;

  private constructor(socket: Socket, inFlightMax: number) {
    this.socket = socket;
    this.inFlightMax = inFlightMax;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.input.push(chunk);
      if (this.inTransmission) this.takeReplies();
      else this.handshakeWaiter?.();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.failAll(new Error('the NBD connection closed'));
        resolve();
      });
    });
  }

  /** Connects and negotiates the export with NBD_OPT_GO; ready for requests when it resolves. */
  static async connect(address: NbdAddress, options: NbdTestClientOptions = {}): Promise<NbdTestClient> {
    const client = new NbdTestClient(await openSocket(address), options.inFlightMax ?? 64);
    try {
      await client.handshake(options.exportName ?? '');
    } catch (error) {
      client.socket.destroy();
      throw error;
    }
    return client;
  }

  private async take(count: number): Promise<Buffer> {
    while (this.input.length < count) {
      if (this.closedError !== null) throw this.closedError;
      await new Promise<void>((resolve) => (this.handshakeWaiter = resolve));
      this.handshakeWaiter = null;
    }
    return this.input.take(count);
  }

  private async handshake(exportName: string): Promise<void> {
    const greeting = await this.take(18);
    if (greeting.readBigUInt64BE(0) !== nbd.NBDMAGIC || greeting.readBigUInt64BE(8) !== nbd.IHAVEOPT)
      throw new Error('not an NBD fixed newstyle server');
    const clientFlags = Buffer.alloc(4);
    clientFlags.writeUInt32BE(nbd.FLAG_C_FIXED_NEWSTYLE | nbd.FLAG_C_NO_ZEROES);
    const name = Buffer.from(exportName);
    const option = Buffer.alloc(16 + 4 + name.length + 2);
    option.writeBigUInt64BE(nbd.IHAVEOPT, 0);
    option.writeUInt32BE(nbd.OPT_GO, 8);
    option.writeUInt32BE(4 + name.length + 2, 12);
    option.writeUInt32BE(name.length, 16);
    name.copy(option, 20);
    option.writeUInt16BE(0, 20 + name.length);
    this.socket.write(Buffer.concat([clientFlags, option]));
    for (;;) {
      const header = await this.take(20);
      if (header.readBigUInt64BE(0) !== nbd.OPTION_REPLY_MAGIC) throw new Error('bad option reply magic');
      const type = header.readUInt32BE(12);
      const data = await this.take(header.readUInt32BE(16));
      if (type === nbd.REP_ACK) break;
      if (type !== nbd.REP_INFO) throw new Error(`NBD_OPT_GO refused: reply type 0x${type.toString(16)}`);
      if (data.readUInt16BE(0) === nbd.INFO_EXPORT) {
        this.sizeBytes = Number(data.readBigUInt64BE(2));
        this.transmissionFlags = data.readUInt16BE(10);
      }
    }
    this.inTransmission = true;
    this.takeReplies();
  }

  /** Every complete reply in the input, each handed to its request by cookie. */
  private takeReplies(): void {
    while (this.input.length >= nbd.SIMPLE_REPLY_HEADER_SIZE) {
      const header = this.input.peek(nbd.SIMPLE_REPLY_HEADER_SIZE);
      if (header.readUInt32BE(0) !== nbd.SIMPLE_REPLY_MAGIC) {
        this.abort(new Error(`bad reply magic 0x${header.readUInt32BE(0).toString(16)}`));
        return;
      }
      const error = header.readUInt32BE(4);
      const cookie = header.readBigUInt64BE(8);
      const request = this.pending.get(cookie);
      if (request === undefined) {
        this.abort(new Error(`a reply for cookie ${cookie}, which no request waits for`));
        return;
      }
      const dataLength = request.type === nbd.CMD_READ && error === 0 ? request.length : 0;
      if (this.input.length < nbd.SIMPLE_REPLY_HEADER_SIZE + dataLength) return;
      this.input.skip(nbd.SIMPLE_REPLY_HEADER_SIZE);
      const data = dataLength > 0 ? Buffer.from(this.input.take(dataLength)) : Buffer.alloc(0);
      this.pending.delete(cookie);
      this.slotWaiters.shift()?.();
      request.resolve({ error, data });
    }
  }

  private abort(error: Error): void {
    this.failAll(error);
    this.socket.destroy();
  }

  private failAll(error: Error): void {
    this.closedError ??= error;
    this.handshakeWaiter?.();
    for (const request of this.pending.values()) request.reject(error);
    this.pending.clear();
    for (const waiter of this.slotWaiters.splice(0)) waiter();
  }

  /** Sends one request (after waiting for a slot) and resolves to its reply, error or not. */
  async request(type: number, offset: number, length: number, payload?: Uint8Array, flags = 0): Promise<NbdReply> {
    while (this.pending.size >= this.inFlightMax && this.closedError === null)
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    if (this.closedError !== null) throw this.closedError;
    const cookie = this.nextCookie++;
    const header = nbd.encodeRequest({ type, offset, length, cookie, flags });
    const reply = new Promise<NbdReply>((resolve, reject) => {
      this.pending.set(cookie, { type, length, resolve, reject });
    });
    this.socket.write(header);
    if (payload !== undefined) this.socket.write(payload);
    return reply;
  }

  private async expectDone(name: string, reply: Promise<NbdReply>): Promise<NbdReply> {
    const { error, data } = await reply;
    if (error !== 0) throw new NbdReplyError(name, error);
    return { error, data };
  }

  async write(offset: number, bytes: Uint8Array, flags = 0): Promise<void> {
    await this.expectDone('WRITE', this.request(nbd.CMD_WRITE, offset, bytes.length, bytes, flags));
  }

  async read(offset: number, length: number): Promise<Buffer> {
    return (await this.expectDone('READ', this.request(nbd.CMD_READ, offset, length))).data;
  }

  async flush(): Promise<void> {
    await this.expectDone('FLUSH', this.request(nbd.CMD_FLUSH, 0, 0));
  }

  async writeZeroes(offset: number, length: number, flags = 0): Promise<void> {
    await this.expectDone('WRITE_ZEROES', this.request(nbd.CMD_WRITE_ZEROES, offset, length, undefined, flags));
  }

  async trim(offset: number, length: number): Promise<void> {
    await this.expectDone('TRIM', this.request(nbd.CMD_TRIM, offset, length));
  }

  /** NBD_CMD_DISC, then waits for the server to close the connection. */
  async disconnect(): Promise<void> {
    this.socket.write(nbd.encodeRequest({ type: nbd.CMD_DISC, offset: 0, length: 0, cookie: 0n }));
    await this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
