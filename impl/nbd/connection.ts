// One client connection: bytes in, the handshake, then requests framed, reserved
// and queued for the batch scheduler. Parsing is in arrival order. What it holds is
// bounded (docs/nbd.md, "Limits"): a request reserves its payload or reply bytes
// (plus a fixed share) from the server's one buffer budget before its payload is
// read; when the budget or the connection's queue is full the socket is paused
// and resumed as replies leave. A reservation is released once the request's reply
// has left the socket's buffer. In the handshake, reading stops while more than
// `handshakeRepliesMax` bytes of option replies wait to be read by the client.

import type { Socket } from 'node:net';
import type { BatchScheduler } from './batchScheduler.ts';
import { blockStatusReplyBytesMax } from './blockStatus.ts';
import { type BudgetWaiter, type BufferBudget, requestShareBytes } from './bufferBudget.ts';
import { ByteQueue } from './byteQueue.ts';
import { type ExportFacts, Handshake } from './handshake.ts';
import * as nbd from './protocol.ts';
import { Replies } from './replies.ts';
import { type QueuedRequest, type RequestOrigin, RequestQueue } from './requestQueue.ts';

export interface ConnectionLimits {
  readonly payloadMax: number;
  readonly handshakeTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** Requests framed and not yet taken into a batch, per connection. */
  readonly queuedMax: number;
}

export interface ConnectionServer extends ExportFacts {
  readonly scheduler: BatchScheduler;
  readonly budget: BufferBudget;
  readonly limits: ConnectionLimits;
  /** The volume's region size: BLOCK_STATUS extents are runs of regions. */
  readonly regionSize: number;
  logLine(line: string): void;
}

/** A request whose header is parsed: waiting for its reservation, then for its payload. */
interface Framed {
  readonly type: number;
  readonly flags: number;
  readonly cookie: Buffer;
  readonly offset: bigint;
  readonly length: number;
  readonly reservedBytes: number;
  granted: boolean;
}

const emptyWrite = Buffer.alloc(0);
/** Option replies waiting in the socket's buffer above which the handshake stops reading (NBD_OPT_LIST in a loop). */
const handshakeRepliesMax = 1024 * 1024;

export class Connection implements RequestOrigin {
  readonly socket: Socket;
  readonly input = new ByteQueue();
  readonly replies: Replies;
  private readonly server: ConnectionServer;
  private readonly handshake: Handshake;
  private readonly queue: RequestQueue;
  private state: 'handshake' | 'transmission' | 'closed' = 'handshake';
  /** Payload bytes of a refused request still to skip. */
  private skipping = 0;
  private framed: Framed | null = null;
  private waiter: BudgetWaiter | null = null;
  /** Bytes of the budget this connection holds; all released when it closes. */
  private heldBytes = 0;
  /** Reservations of answered requests whose replies may still be in the socket's buffer, and those a write callback will release. */
  private unflushedBytes = 0;
  private markedBytes = 0;
  /** Requests queued or in a batch, not answered yet. */
  private inFlight = 0;
  private disconnecting = false;
  /** corkReplies calls not yet matched by uncorkReplies. */
  private corks = 0;
  private socketPaused = false;
  private pumpPending = false;
  private handshakeTimer: NodeJS.Timeout | null;
  private requestTimer: NodeJS.Timeout | null = null;
  /** Armed while replies wait in the socket's buffer: a client that never reads them would hold their reservations. */
  private replyTimer: NodeJS.Timeout | null = null;

  constructor(server: ConnectionServer, socket: Socket) {
    this.server = server;
    this.socket = socket;
    this.replies = new Replies(socket);
    this.queue = new RequestQueue(this, server.limits.queuedMax);
    this.handshake = new Handshake(
      { input: this.input, send: (bytes) => socket.write(bytes), close: (reason) => this.close(reason) },
      server,
    );
    this.handshakeTimer = setTimeout(
      () => this.close(`still in the handshake after ${server.limits.handshakeTimeoutMs / 1000} s`),
      server.limits.handshakeTimeoutMs,
    );
    this.handshakeTimer.unref();
    socket.on('data', (chunk: Buffer) => {
      this.input.push(chunk);
      this.requestTimer?.refresh();
      this.pump();
    });
    socket.on('drain', () => this.pump());
    socket.on('error', () => this.drop());
    socket.on('close', () => this.drop());
    this.handshake.greet();
  }

  get session() {
    return this.handshake.session;
  }

  get open(): boolean {
    return this.state !== 'closed';
  }

  /** The engine answered `request`: its reservation goes once the reply has left the socket's buffer. */
  answered(request: QueuedRequest): void {
    this.inFlight--;
    if (this.state === 'closed') return;
    // Every reply, a WRITE's too, keeps its reservation until it has left the socket's
    // buffer: a client that sends and never reads then runs into the cap.
    this.unflushedBytes += request.reservedBytes;
    if (this.corks === 0) this.releaseFlushed();
    if (this.disconnecting && this.inFlight === 0) this.close(null);
    else this.pumpSoon();
  }

  corkReplies(): void {
    this.corks++;
    this.socket.cork();
  }

  uncorkReplies(): void {
    if (this.corks === 0) throw new Error('uncorkReplies without corkReplies');
    this.corks--;
    this.socket.uncork();
    if (this.corks === 0 && this.unflushedBytes > 0 && this.state !== 'closed') this.releaseFlushed();
  }

  close(reason: string | null): void {
    if (this.state === 'closed') return;
    if (reason !== null) this.server.logLine(`nbd: closing a connection: ${reason}`);
    this.drop();
    this.socket.end();
    this.socket.destroySoon();
    // A client that does not read keeps the socket (and its connection slot) until the
    // replies drain: past the request timeout it is cut off.
    if (this.socket.writableLength > 0) {
      setTimeout(() => this.socket.destroy(), this.server.limits.requestTimeoutMs).unref();
    }
  }

  /** The connection is gone: timers stop, the queue is dropped, every reserved byte goes back. */
  private drop(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    if (this.requestTimer !== null) clearTimeout(this.requestTimer);
    this.clearReplyTimer();
    this.handshakeTimer = null;
    this.requestTimer = null;
    if (this.waiter !== null) this.server.budget.cancel(this.waiter);
    this.waiter = null;
    this.queue.drain();
    const held = this.heldBytes;
    this.heldBytes = 0;
    this.server.budget.release(held);
  }

  private release(bytes: number): void {
    if (bytes > this.heldBytes) throw new Error(`a connection releasing ${bytes} of its ${this.heldBytes} bytes`);
    this.heldBytes -= bytes;
    this.server.budget.release(bytes);
  }

  /** Releases the reservations of replies that left the socket's buffer: at once when it is empty, else after a marker write. */
  private releaseFlushed(): void {
    if (this.socket.writableLength === 0 && this.markedBytes === 0) {
      const bytes = this.unflushedBytes;
      this.unflushedBytes = 0;
      this.release(bytes);
      return;
    }
    if (this.markedBytes > 0) return;
    this.markedBytes = this.unflushedBytes;
    this.armReplyTimer();
    this.socket.write(emptyWrite, () => {
      if (this.state === 'closed') return;
      const bytes = this.markedBytes;
      this.markedBytes = 0;
      this.unflushedBytes -= bytes;
      this.release(bytes);
      this.clearReplyTimer();
      if (this.unflushedBytes > 0) this.releaseFlushed();
    });
  }

  /** Parses again after the current turn (a grant or an answer may unblock the connection). */
  private pumpSoon(): void {
    if (this.pumpPending) return;
    this.pumpPending = true;
    queueMicrotask(() => {
      this.pumpPending = false;
      this.pump();
    });
  }

  /** Handles every complete message in the input, in order, until blocked. */
  private pump(): void {
    while (this.state !== 'closed' && !this.blocked()) {
      let more: boolean;
      try {
        more = this.next();
      } catch (error) {
        // A bug of ours, not of the client: drop this connection, keep serving the others.
        this.close(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        return;
      }
      if (!more) break;
    }
    const pause = this.state !== 'closed' && this.blocked();
    if (pause && !this.socketPaused) this.socket.pause();
    if (!pause && this.socketPaused) this.socket.resume();
    this.socketPaused = pause;
  }

  /** Waiting for the budget, for room in the queue, for the answers before a DISC, or for the client to read option replies. */
  private blocked(): boolean {
    if (this.state === 'handshake') return this.socket.writableLength > handshakeRepliesMax;
    return this.waiter !== null || this.queue.full || this.disconnecting;
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
        if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
        this.handshakeTimer = null;
        this.replies.structured = this.session.structuredReplies;
      }
      return step === 'handled' || step === 'transmission';
    }
    if (this.state === 'transmission') return this.framed === null ? this.header() : this.payload(this.framed);
    return false;
  }

  /** A request header: refused at once when over the payload limit, else framed and its bytes reserved. */
  private header(): boolean {
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
    this.input.skip(nbd.REQUEST_HEADER_SIZE);
    if (type === nbd.CMD_DISC) {
      this.disconnecting = true;
      if (this.inFlight === 0) this.close(null);
      return false;
    }
    const payloadMax = this.server.limits.payloadMax;
    if (type === nbd.CMD_WRITE && length > payloadMax) {
      this.skipping = length;
      this.replies.error(cookie, nbd.EINVAL, 'over the payload limit');
      return true;
    }
    const dataBytes =
      type === nbd.CMD_WRITE || (type === nbd.CMD_READ && length <= payloadMax)
        ? length
        : type === nbd.CMD_BLOCK_STATUS
          ? this.blockStatusReplyBytes(offset, length, flags)
          : 0;
    const framed: Framed = {
      type,
      flags,
      cookie,
      offset,
      length,
      reservedBytes: requestShareBytes + dataBytes,
      granted: false,
    };
    this.framed = framed;
    const waiter: BudgetWaiter = {
      bytes: framed.reservedBytes,
      granted: () => {
        this.waiter = null;
        this.heldBytes += framed.reservedBytes;
        framed.granted = true;
        this.pumpSoon();
      },
    };
    if (!this.server.budget.reserve(waiter)) {
      this.waiter = waiter;
      return false;
    }
    this.heldBytes += framed.reservedBytes;
    framed.granted = true;
    return true;
  }

  /**
   * What a BLOCK_STATUS reserves: the most its reply can take (blockStatus.ts), up
   * to a chunk per context of nearly `payloadMax` each; never more than the cap, so
   * that every reservation fits it alone.
   */
  private blockStatusReplyBytes(offset: bigint, length: number, flags: number): number {
    const start = Number(offset > BigInt(Number.MAX_SAFE_INTEGER) ? 0n : offset);
    const bytes = blockStatusReplyBytesMax(this.session, this.server.regionSize, start, length, flags);
    return Math.min(this.server.budget.capBytes, bytes);
  }

  /** The reserved request: its payload (a WRITE), then into the queue. */
  private payload(framed: Framed): boolean {
    if (!framed.granted) return false;
    let payload: Buffer | null = null;
    if (framed.type === nbd.CMD_WRITE) {
      if (this.input.length < framed.length) {
        this.armRequestTimer();
        return false;
      }
      this.clearRequestTimer();
      payload = this.input.take(framed.length);
    }
    this.framed = null;
    this.inFlight++;
    const { type, flags, cookie, offset, length, reservedBytes } = framed;
    this.queue.push({
      type,
      flags,
      cookie,
      offset,
      length,
      payload,
      reservedBytes,
      origin: this,
      zeroedBytes: 0,
      finished: false,
    });
    this.server.scheduler.queued(this.queue);
    return true;
  }

  /** A client that stops in the middle of a payload would hold its reservation forever. */
  private armRequestTimer(): void {
    if (this.requestTimer !== null) return;
    const seconds = this.server.limits.requestTimeoutMs / 1000;
    this.requestTimer = setTimeout(
      () => this.close(`no byte of a request payload for ${seconds} s`),
      this.server.limits.requestTimeoutMs,
    );
    this.requestTimer.unref();
  }

  /**
   * Replies that do not leave the socket's buffer for the request timeout: the client
   * stopped reading, and its reservations would fill the one cap that every
   * connection shares, stalling them all. It is cut off and its bytes go back.
   */
  private armReplyTimer(): void {
    if (this.replyTimer !== null) return;
    const seconds = this.server.limits.requestTimeoutMs / 1000;
    this.replyTimer = setTimeout(() => {
      this.server.logLine(`nbd: closing a connection: its replies were not read for ${seconds} s`);
      this.drop();
      this.socket.destroy();
    }, this.server.limits.requestTimeoutMs);
    this.replyTimer.unref();
  }

  private clearReplyTimer(): void {
    if (this.replyTimer === null) return;
    clearTimeout(this.replyTimer);
    this.replyTimer = null;
  }

  private clearRequestTimer(): void {
    if (this.requestTimer === null) return;
    clearTimeout(this.requestTimer);
    this.requestTimer = null;
  }
}
