// The transmission phase of one connection: requests on the wire (at most inFlightMax,
// each with a cookie of its own), the rest waiting in a bounded FIFO, replies matched
// by cookie in any order. A request that gets no reply within requestTimeoutMs of
// leaving (its bytes handed to the kernel: the socket's write callback, so that the
// time a slow link takes to carry a large payload does not count), a request that
// cannot leave while nothing moves for requestTimeoutMs (no byte taken, no reply: a
// server that stopped reading), a dropped connection or a reply that breaks the
// protocol fails the connection: every
// request on it, sent or waiting, fails with NbdLinkError, since none of them is
// confirmed. An error reply fails its own request only (NbdReplyError).

import type { Socket } from 'node:net';
import { CowmapError } from '../../errors.ts';
import type { ByteQueue } from '../byteQueue.ts';
import * as nbd from '../protocol.ts';
import { NbdLinkError, NbdReplyError } from './nbdErrors.ts';
import { ReplyReader, type SimpleReply } from './replyReader.ts';

/** Requests waiting for a slot on the wire, at most, by default: a caller past it has lost track of its requests. */
export const queuedRequestsMaxDefault = 1 << 16;

/** A payload goes to the socket in writes of at most this many bytes. */
const writePieceBytes = 1024 * 1024;

export interface TransmissionOptions {
  readonly requestTimeoutMs: number;
  readonly inFlightMax: number;
  readonly queuedRequestsMax?: number;
}

interface Request {
  readonly type: number;
  readonly flags: number;
  readonly offset: number;
  readonly length: number;
  readonly payload: Uint8Array | null;
  readonly resolve: (data: Buffer) => void;
  readonly reject: (error: Error) => void;
  /** When its reply is due: requestTimeoutMs after it left; null while it has not left. */
  deadlineMs: number | null;
}

function describe(request: Request): string {
  const command = nbd.commandNames[request.type] ?? `command ${request.type}`;
  return request.type === nbd.CMD_FLUSH
    ? `NBD ${command}`
    : `NBD ${command} of ${request.length} bytes at ${request.offset}`;
}

export class Transmission {
  private readonly waiting: Request[] = [];
  /** The requests on the wire by cookie, in the order sent (so the first has the earliest deadline). */
  private readonly inFlight = new Map<bigint, Request>();
  private readonly reader: ReplyReader;
  private cookieNext = 1n;
  private pumpScheduled = false;
  private drainAwaited = false;
  private timer: NodeJS.Timeout | null = null;
  /** The last time the link moved: bytes left, a request left or a reply came. */
  private progressAtMs = Date.now();
  /** A large payload goes piece by piece: no other request's bytes may come between its pieces. */
  private piecesPending = false;
  private failure: NbdLinkError | null = null;
  /** Why no new request is taken (disconnect() or NBD_ESHUTDOWN), or null. */
  private closingReason: string | null = null;
  private disconnected: Promise<void> | null = null;
  private readonly idleWaiters: (() => void)[] = [];
  /** A promise per outstanding request that settles (never rejects) with it: what settled() waits for. */
  private readonly unsettled = new Set<Promise<void>>();

  constructor(
    private readonly socket: Socket,
    input: ByteQueue,
    private readonly options: TransmissionOptions,
  ) {
    this.reader = new ReplyReader(input, (cookie) => {
      const request = this.inFlight.get(cookie);
      return request === undefined ? undefined : request.type === nbd.CMD_READ ? request.length : 0;
    });
    socket.on('data', (chunk: Buffer) => {
      input.push(chunk);
      this.readReplies();
    });
    socket.on('error', (error) => this.fail(new NbdLinkError(`connection error: ${error.message}`, { cause: error })));
    socket.on('close', () => this.fail(new NbdLinkError('the server closed the connection')));
    socket.on('drain', () => {
      this.drainAwaited = false;
      this.pump();
    });
    // Replies that came with the handshake's last bytes.
    if (input.length > 0) queueMicrotask(() => this.readReplies());
  }

  /** Requests sent or waiting. */
  get outstanding(): number {
    return this.inFlight.size + this.waiting.length;
  }

  /** The reply's data (a READ's) or an empty buffer; NbdReplyError for an error reply, NbdLinkError when the connection fails. */
  submit(type: number, offset: number, length: number, flags = 0, payload: Uint8Array | null = null): Promise<Buffer> {
    const reply = this.enqueue(type, offset, length, flags, payload);
    const settled = reply.then(ignore, ignore);
    this.unsettled.add(settled);
    void settled.then(() => this.unsettled.delete(settled));
    return reply;
  }

  /** Resolves once every request submitted before this call has settled, whatever later callers submit. */
  settled(): Promise<void> {
    return Promise.all([...this.unsettled]).then(ignore);
  }

  private enqueue(
    type: number,
    offset: number,
    length: number,
    flags: number,
    payload: Uint8Array | null,
  ): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const request: Request = { type, flags, offset, length, payload, resolve, reject, deadlineMs: null };
      if (this.closingReason !== null) return reject(new NbdLinkError(`${describe(request)}: ${this.closingReason}`));
      if (this.failure !== null)
        return reject(
          new NbdLinkError(`${describe(request)}: the connection failed earlier: ${this.failure.message}`, {
            cause: this.failure,
          }),
        );
      const queuedRequestsMax = this.options.queuedRequestsMax ?? queuedRequestsMaxDefault;
      if (this.waiting.length >= queuedRequestsMax)
        return reject(
          new CowmapError('E_BAD_REQUEST', `${describe(request)}: ${queuedRequestsMax} requests are waiting already`),
        );
      this.waiting.push(request);
      this.schedulePump();
    });
  }

  /** Resolves once no request is outstanding (each has its reply, or the connection failed). */
  whenIdle(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The soft disconnect: no new requests, NBD_CMD_DISC once every outstanding one is answered, then end. */
  disconnect(lingerMs: number, reason = 'the client closed the connection'): Promise<void> {
    this.closingReason ??= reason;
    this.disconnected ??= this.disconnectWhenIdle(lingerMs);
    return this.disconnected;
  }

  private async disconnectWhenIdle(lingerMs: number): Promise<void> {
    await this.whenIdle();
    if (this.failure === null) {
      this.socket.write(nbd.encodeRequest({ type: nbd.CMD_DISC, offset: 0, length: 0, cookie: this.cookieNext++ }));
      this.socket.end();
    }
    if (!this.socket.destroyed) {
      const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
      const linger = setTimeout(() => this.socket.destroy(), lingerMs);
      await closed;
      clearTimeout(linger);
    }
    this.fail(new NbdLinkError(this.closingReason!));
  }

  /** Ends the connection now; every outstanding request fails with (a link error naming it and) `error`. */
  fail(error: NbdLinkError): void {
    if (this.failure !== null) return;
    this.failure = error;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.socket.destroy();
    const requests = [...this.inFlight.values(), ...this.waiting];
    this.inFlight.clear();
    this.waiting.length = 0;
    for (const request of requests)
      request.reject(new NbdLinkError(`${describe(request)}: ${error.message}`, { cause: error }));
    this.notifyIdle();
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // Every request a caller starts in one turn leaves in one corked write.
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.failure !== null || this.drainAwaited || this.piecesPending) return;
    let corked = false;
    const sendable = () => this.inFlight.size < this.options.inFlightMax && !this.drainAwaited && !this.piecesPending;
    while (this.waiting.length > 0 && sendable()) {
      if (!corked) this.socket.cork();
      corked = true;
      this.send(this.waiting.shift()!);
    }
    if (corked) this.socket.uncork();
  }

  private send(request: Request): void {
    const cookie = this.cookieNext++;
    // An idle link starts its stall clock now: a request cannot wait for a move before it was sent.
    if (this.inFlight.size === 0) this.progressAtMs = Date.now();
    this.inFlight.set(cookie, request);
    const header = nbd.encodeRequest({
      type: request.type,
      offset: request.offset,
      length: request.length,
      cookie,
      flags: request.flags,
    });
    // The callback of the request's last write: all of it has left.
    const left = (error?: Error | null): void => {
      if (error !== undefined && error !== null) return; // The socket's 'error' fails the connection.
      this.progressAtMs = Date.now();
      request.deadlineMs = this.progressAtMs + this.options.requestTimeoutMs;
    };
    const { payload } = request;
    const flowing = this.socket.write(header, payload === null ? left : undefined);
    if (payload !== null && payload.length <= writePieceBytes) this.socket.write(payload, left);
    else if (payload !== null) this.writePieces(payload, 0, left);
    // Backpressure: the next request waits for 'drain'.
    if (!flowing || this.socket.writableNeedDrain) this.drainAwaited = true;
    this.timer ??= setTimeout(() => this.checkDeadlines(), this.options.requestTimeoutMs);
  }

  /**
   * A large payload from `at`, one piece at a time (views, no copy), each written once
   * the one before has left: every piece that leaves is progress the stall check sees
   * (writes queued together would leave as one). `left` runs after the last.
   */
  private writePieces(payload: Uint8Array, at: number, left: (error?: Error | null) => void): void {
    this.piecesPending = true;
    const end = Math.min(at + writePieceBytes, payload.length);
    this.socket.write(payload.subarray(at, end), (error) => {
      if (error !== undefined && error !== null) return; // The socket's 'error' fails the connection.
      this.progressAtMs = Date.now();
      if (end < payload.length) return this.writePieces(payload, end, left);
      this.piecesPending = false;
      left();
      this.pump();
    });
  }

  private checkDeadlines(): void {
    this.timer = null;
    const oldest = this.inFlight.values().next();
    if (oldest.done === true) return;
    // Requests leave in order: the oldest is the first due, or (not left yet) the one waiting for the link to move.
    const { deadlineMs } = oldest.value;
    const dueMs = deadlineMs ?? this.progressAtMs + this.options.requestTimeoutMs;
    const leftMs = dueMs - Date.now();
    if (leftMs > 0) this.timer = setTimeout(() => this.checkDeadlines(), leftMs);
    else if (deadlineMs !== null)
      this.fail(new NbdLinkError(`no reply to ${describe(oldest.value)} within ${this.options.requestTimeoutMs} ms`));
    else {
      const stalled = `${describe(oldest.value)} could not leave: the server took no byte for ${this.options.requestTimeoutMs} ms`;
      this.fail(new NbdLinkError(stalled));
    }
  }

  private readReplies(): void {
    if (this.failure !== null) return;
    try {
      for (let reply = this.reader.next(); reply !== null && this.failure === null; reply = this.reader.next())
        this.settle(reply);
    } catch (error) {
      if (!(error instanceof NbdLinkError)) throw error;
      this.fail(new NbdLinkError(`the server broke the NBD protocol: ${error.message}`, { cause: error }));
    }
    this.pump();
  }

  private settle(reply: SimpleReply): void {
    this.progressAtMs = Date.now();
    const request = this.inFlight.get(reply.cookie)!;
    this.inFlight.delete(reply.cookie);
    if (reply.errno === 0) request.resolve(reply.data);
    else {
      request.reject(
        new NbdReplyError(nbd.commandNames[request.type] ?? `command ${request.type}`, reply.errno, whereOf(request)),
      );
      // doc/proto.md: a client that receives NBD_ESHUTDOWN must initiate a soft disconnect.
      if (reply.errno === nbd.ESHUTDOWN) this.shutDown();
    }
    this.notifyIdle();
  }

  private shutDown(): void {
    if (this.closingReason !== null) return;
    const reason = 'the server is shutting down (it replied NBD_ESHUTDOWN)';
    const waiting = this.waiting.splice(0);
    for (const request of waiting) request.reject(new NbdLinkError(`${describe(request)}: ${reason}`));
    void this.disconnect(this.options.requestTimeoutMs, reason);
  }

  private notifyIdle(): void {
    if (this.outstanding > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

function ignore(): void {}

function whereOf(request: Request): string {
  return request.type === nbd.CMD_FLUSH ? '' : `of ${request.length} bytes at ${request.offset}`;
}
