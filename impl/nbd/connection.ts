// One client connection: bytes in, the handshake, then requests framed and handed
// to the engine. Parsing is in arrival order. What is buffered is bounded: at most
// one partial request (its payload at most `payloadMax` bytes) plus what the kernel
// holds; when the client does not read its replies (more than `replyBufferMax`
// bytes waiting), the connection stops reading until they drain.

import type { Socket } from 'node:net';
import { ByteQueue } from './byteQueue.ts';
import type { Engine } from './engine.ts';
import { type ExportFacts, Handshake } from './handshake.ts';
import * as nbd from './protocol.ts';
import { Replies } from './replies.ts';

export interface ConnectionLimits {
  readonly payloadMax: number;
  readonly replyBufferMax: number;
}

export interface ConnectionServer extends ExportFacts {
  readonly engine: Engine;
  readonly limits: ConnectionLimits;
  logLine(line: string): void;
}

export class Connection {
  readonly socket: Socket;
  readonly input = new ByteQueue();
  readonly replies: Replies;
  private readonly server: ConnectionServer;
  private readonly handshake: Handshake;
  private state: 'handshake' | 'transmission' | 'closed' = 'handshake';
  /** Payload bytes of a refused request still to skip. */
  private skipping = 0;
  private paused = false;

  constructor(server: ConnectionServer, socket: Socket) {
    this.server = server;
    this.socket = socket;
    this.replies = new Replies(socket);
    this.handshake = new Handshake(
      { input: this.input, send: (bytes) => socket.write(bytes), close: (reason) => this.close(reason) },
      server,
    );
    socket.on('data', (chunk: Buffer) => {
      this.input.push(chunk);
      this.pump();
    });
    socket.on('drain', () => {
      if (this.paused) {
        this.paused = false;
        socket.resume();
        this.pump();
      }
    });
    socket.on('error', () => this.drop());
    socket.on('close', () => this.drop());
    this.handshake.greet();
  }

  get session() {
    return this.handshake.session;
  }

  private drop(): void {
    this.state = 'closed';
  }

  close(reason: string | null): void {
    if (reason !== null) this.server.logLine(`nbd: closing a connection: ${reason}`);
    this.state = 'closed';
    this.socket.end();
    this.socket.destroySoon();
  }

  /** Handles every complete message in the input, in order. */
  private pump(): void {
    this.socket.cork();
    try {
      while (this.state !== 'closed' && !this.paused) {
        let more: boolean;
        try {
          more = this.next();
        } catch (error) {
          // A bug of ours, not of the client: drop this connection, keep serving the others.
          this.close(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
          break;
        }
        if (!more) break;
        if (this.socket.writableLength > this.server.limits.replyBufferMax) {
          this.paused = true;
          this.socket.pause();
        }
      }
    } finally {
      this.socket.uncork();
    }
  }

  /** Handles one message if it is complete; false when more bytes are needed. */
  private next(): boolean {
    if (this.skipping > 0) {
      this.skipping -= this.input.skip(this.skipping);
      return this.skipping === 0 && this.input.length > 0;
    }
    if (this.state === 'handshake') {
      const step = this.handshake.step();
      if (step === 'transmission') {
        this.state = 'transmission';
        this.replies.structured = this.session.structuredReplies;
      }
      return step === 'handled' || step === 'transmission';
    }
    if (this.state === 'transmission') return this.request();
    return false;
  }

  private request(): boolean {
    if (this.input.length < nbd.REQUEST_HEADER_SIZE) return false;
    const header = this.input.peek(nbd.REQUEST_HEADER_SIZE);
    if (header.readUInt32BE(0) !== nbd.REQUEST_MAGIC) {
      this.close(`a request with magic 0x${header.readUInt32BE(0).toString(16)}`);
      return false;
    }
    const flags = header.readUInt16BE(4);
    const type = header.readUInt16BE(6);
    const cookie = Buffer.from(header.subarray(8, 16));
    const offset = header.readBigUInt64BE(16);
    const length = header.readUInt32BE(24);
    if (type === nbd.CMD_WRITE) {
      if (length > this.server.limits.payloadMax) {
        this.input.skip(nbd.REQUEST_HEADER_SIZE);
        this.skipping = length;
        this.replies.error(cookie, nbd.EINVAL, 'over the payload limit');
        return true;
      }
      if (this.input.length < nbd.REQUEST_HEADER_SIZE + length) return false;
    }
    this.input.skip(nbd.REQUEST_HEADER_SIZE);
    const payload = type === nbd.CMD_WRITE ? this.input.take(length) : null;
    if (type === nbd.CMD_DISC) {
      this.close(null);
      return false;
    }
    this.server.engine.submit(this, { type, flags, cookie, offset, length, payload });
    return true;
  }
}
