// A hand-framed NBD server for the client's tests (no tests here): an in-memory
// export behind a handshake the test picks (NBD_OPT_GO with or without
// NBD_INFO_BLOCK_SIZE, only NBD_OPT_EXPORT_NAME, not fixed newstyle, a refusal), and
// a hook per request that lets a test answer with an error, hold replies to release
// them in another order, stall, drop the connection or send bytes that break the
// protocol. Test-only: nothing outside *.test.ts imports this file.

import { createServer, type Server, type Socket } from 'node:net';
import { ByteQueue } from '../byteQueue.ts';
import * as nbd from '../protocol.ts';

export interface FakeRequest {
  readonly type: number;
  readonly flags: number;
  readonly cookie: bigint;
  readonly offset: number;
  readonly length: number;
  readonly payload: Buffer | null;
}

/**
 * What the server does with a request: answer it (as the image says, or with an errno), keep it for later,
 * drop the link, or nothing (the hook wrote what it wanted to the socket).
 */
export type FakeAction = 'answer' | { errno: number } | 'hold' | 'drop' | 'none';

export interface FakeServerOptions {
  readonly exportSize?: number;
  /** 'go': NBD_OPT_GO; 'exportNameOnly': NBD_REP_ERR_UNSUP to it; 'notFixed': no FLAG_FIXED_NEWSTYLE at all. */
  readonly handshake?: 'go' | 'exportNameOnly' | 'notFixed';
  /** The export names it has; others are refused (NBD_REP_ERR_UNKNOWN, or a closed connection after EXPORT_NAME). */
  readonly exportNames?: readonly string[];
  /** NBD_INFO_BLOCK_SIZE's [minimum, preferred, maximum], sent when the client asks. */
  readonly blockSize?: readonly [number, number, number];
  readonly transmissionFlags?: number;
  /** Offer FLAG_NO_ZEROES. */
  readonly noZeroes?: boolean;
  readonly onRequest?: (request: FakeRequest, server: FakeNbdServer, socket: Socket) => FakeAction;
}

export const fakeFlagsAll =
  nbd.FLAG_HAS_FLAGS | nbd.FLAG_SEND_FLUSH | nbd.FLAG_SEND_FUA | nbd.FLAG_SEND_WRITE_ZEROES | nbd.FLAG_CAN_MULTI_CONN;

export class FakeNbdServer {
  readonly image: Buffer;
  /** Every request received, in order. */
  readonly requests: FakeRequest[] = [];
  /** Requests held by 'hold', with their connection. */
  readonly held: { request: FakeRequest; socket: Socket }[] = [];
  /** The client flags each connection sent. */
  readonly clientFlags: number[] = [];
  /** The options each connection sent. */
  readonly options: number[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(readonly settings: FakeServerOptions = {}) {
    this.image = Buffer.alloc(settings.exportSize ?? 1 << 20);
    this.server = createServer((socket) => this.serve(socket));
  }

  /** Listens on `host` (127.0.0.1; port 0) or on a Unix socket; returns the port or the path. */
  listen(path?: string, host = '127.0.0.1'): Promise<number | string> {
    return new Promise((resolve, reject) => {
      const ready = (): void => resolve(path ?? (this.server.address() as { port: number }).port);
      this.server.once('error', reject);
      if (path === undefined) this.server.listen(0, host, ready);
      else this.server.listen(path, ready);
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Answers a held request now (as the image says, or with `errno`). */
  release(index: number, errno = 0): void {
    const [entry] = this.held.splice(index, 1);
    this.answer(entry!.socket, entry!.request, errno);
  }

  /** A simple reply header, for tests that send broken ones. */
  static replyHeader(errno: number, cookie: bigint, magic = nbd.SIMPLE_REPLY_MAGIC): Buffer {
    const header = Buffer.alloc(nbd.SIMPLE_REPLY_HEADER_SIZE);
    header.writeUInt32BE(magic, 0);
    header.writeUInt32BE(errno, 4);
    header.writeBigUInt64BE(cookie, 8);
    return header;
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const input = new ByteQueue();
    const fixed = this.settings.handshake !== 'notFixed';
    const greeting = Buffer.alloc(18);
    greeting.writeBigUInt64BE(nbd.NBDMAGIC, 0);
    greeting.writeBigUInt64BE(nbd.IHAVEOPT, 8);
    greeting.writeUInt16BE(
      (fixed ? nbd.FLAG_FIXED_NEWSTYLE : 0) | (this.settings.noZeroes !== false ? nbd.FLAG_NO_ZEROES : 0),
      16,
    );
    socket.write(greeting);
    let phase: 'flags' | 'options' | 'transmission' = 'flags';
    let noZeroes = false;
    socket.on('data', (chunk: Buffer) => {
      input.push(chunk);
      for (;;) {
        if (phase === 'flags') {
          if (input.length < 4) return;
          const flags = input.take(4).readUInt32BE(0);
          this.clientFlags.push(flags);
          noZeroes = (flags & nbd.FLAG_C_NO_ZEROES) !== 0;
          phase = 'options';
        } else if (phase === 'options') {
          if (input.length < nbd.OPTION_HEADER_SIZE) return;
          const length = input.peek(nbd.OPTION_HEADER_SIZE).readUInt32BE(12);
          if (input.length < nbd.OPTION_HEADER_SIZE + length) return;
          const option = input.take(nbd.OPTION_HEADER_SIZE).readUInt32BE(8);
          const next = this.option(socket, option, input.take(length), noZeroes);
          if (next === 'closed') return;
          phase = next;
        } else {
          if (input.length < nbd.REQUEST_HEADER_SIZE) return;
          const header = input.peek(nbd.REQUEST_HEADER_SIZE);
          const type = header.readUInt16BE(6);
          const length = header.readUInt32BE(24);
          const payloadLength = type === nbd.CMD_WRITE ? length : 0;
          if (input.length < nbd.REQUEST_HEADER_SIZE + payloadLength) return;
          input.skip(nbd.REQUEST_HEADER_SIZE);
          const payload = payloadLength > 0 ? input.take(payloadLength) : null;
          const request = {
            type,
            flags: header.readUInt16BE(4),
            cookie: header.readBigUInt64BE(8),
            offset: Number(header.readBigUInt64BE(16)),
            length,
            payload,
          };
          if (!this.request(socket, request)) return;
        }
      }
    });
  }

  /** Handles one option; returns the next phase, or 'closed'. */
  private option(
    socket: Socket,
    option: number,
    data: Buffer,
    noZeroes: boolean,
  ): 'options' | 'transmission' | 'closed' {
    this.options.push(option);
    const known = (name: string): boolean => (this.settings.exportNames ?? ['']).includes(name);
    if (option === nbd.OPT_EXPORT_NAME) {
      if (!known(data.toString())) {
        socket.destroy();
        return 'closed';
      }
      const reply = Buffer.alloc(10 + (noZeroes ? 0 : 124));
      reply.writeBigUInt64BE(BigInt(this.image.length), 0);
      reply.writeUInt16BE(this.settings.transmissionFlags ?? fakeFlagsAll, 8);
      socket.write(reply);
      return 'transmission';
    }
    if (option === nbd.OPT_ABORT) {
      this.optionReply(socket, option, nbd.REP_ACK);
      socket.end();
      return 'closed';
    }
    if (option !== nbd.OPT_GO || this.settings.handshake === 'exportNameOnly') {
      this.optionReply(socket, option, nbd.REP_ERR_UNSUP);
      return 'options';
    }
    const name = data.subarray(4, 4 + data.readUInt32BE(0)).toString();
    if (!known(name)) {
      this.optionReply(socket, option, nbd.REP_ERR_UNKNOWN, Buffer.from(`no export '${name}'`));
      return 'options';
    }
    const info = Buffer.alloc(12);
    info.writeUInt16BE(nbd.INFO_EXPORT, 0);
    info.writeBigUInt64BE(BigInt(this.image.length), 2);
    info.writeUInt16BE(this.settings.transmissionFlags ?? fakeFlagsAll, 10);
    this.optionReply(socket, option, nbd.REP_INFO, info);
    if (this.settings.blockSize !== undefined) {
      const blockSize = Buffer.alloc(14);
      blockSize.writeUInt16BE(nbd.INFO_BLOCK_SIZE, 0);
      this.settings.blockSize.forEach((value, index) => {
        blockSize.writeUInt32BE(value, 2 + 4 * index);
      });
      this.optionReply(socket, option, nbd.REP_INFO, blockSize);
    }
    this.optionReply(socket, option, nbd.REP_ACK);
    return 'transmission';
  }

  private optionReply(socket: Socket, option: number, type: number, data = Buffer.alloc(0)): void {
    const header = Buffer.alloc(20);
    header.writeBigUInt64BE(nbd.OPTION_REPLY_MAGIC, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(type, 12);
    header.writeUInt32BE(data.length, 16);
    socket.write(Buffer.concat([header, data]));
  }

  /** Handles one request; false when the connection is gone. */
  private request(socket: Socket, request: FakeRequest): boolean {
    this.requests.push(request);
    if (request.type === nbd.CMD_DISC) {
      socket.end();
      return false;
    }
    const action = this.settings.onRequest?.(request, this, socket) ?? 'answer';
    if (action === 'drop') {
      socket.destroy();
      return false;
    }
    if (action === 'hold') this.held.push({ request, socket });
    else if (action !== 'none') this.answer(socket, request, action === 'answer' ? 0 : action.errno);
    return !socket.destroyed;
  }

  private answer(socket: Socket, request: FakeRequest, errno: number): void {
    const { type, offset, length } = request;
    if (errno === 0 && type === nbd.CMD_WRITE) request.payload!.copy(this.image, offset);
    if (errno === 0 && type === nbd.CMD_WRITE_ZEROES) this.image.fill(0, offset, offset + length);
    const data = errno === 0 && type === nbd.CMD_READ ? this.image.subarray(offset, offset + length) : null;
    socket.write(
      data === null
        ? FakeNbdServer.replyHeader(errno, request.cookie)
        : Buffer.concat([FakeNbdServer.replyHeader(0, request.cookie), data]),
    );
  }
}
