// The requests a connection has framed and not yet run, in the order it sent them.
// The batch scheduler takes them from the head; a TRIM or WRITE_ZEROES stays at
// the head until its last chunk has run, so nothing the connection sent after it
// runs before it (docs/nbd.md, "Request ordering"). Bounded: the connection stops
// framing at `queuedMax` requests.

import type { Replies } from './replies.ts';
import type { Session } from './handshake.ts';

/** One framed request of a connection. */
export interface Request {
  readonly type: number;
  readonly flags: number;
  readonly cookie: Buffer;
  readonly offset: bigint;
  readonly length: number;
  /** A WRITE's payload; null for every other command (dropped once written). */
  payload: Buffer | null;
}

/** What a request needs of the connection it came on. */
export interface RequestOrigin {
  readonly replies: Replies;
  readonly session: Session;
  /** False once the connection is gone: its queued requests are dropped unanswered. */
  readonly open: boolean;
  /** The request was answered: its reservation goes once the reply has left the socket's buffer. */
  answered(request: QueuedRequest): void;
  /** Replies from here to `uncorkReplies` leave together (one writev): the engine brackets each phase of a batch. */
  corkReplies(): void;
  uncorkReplies(): void;
}

export interface QueuedRequest extends Request {
  readonly origin: RequestOrigin;
  /** Bytes reserved from the buffer budget for this request (payload or reply, plus its share). */
  readonly reservedBytes: number;
  /** TRIM / WRITE_ZEROES: bytes of the range already zeroed (one chunk per batch). */
  zeroedBytes: number;
  /** Answered (or failed): a zeroing that failed part way is not continued. */
  finished: boolean;
}

export class RequestQueue {
  readonly origin: RequestOrigin;
  readonly queuedMax: number;
  private items: QueuedRequest[] = [];
  private head = 0;
  /** In the scheduler's ring of queues with work. */
  inRing = false;

  constructor(origin: RequestOrigin, queuedMax: number) {
    this.origin = origin;
    this.queuedMax = queuedMax;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  get full(): boolean {
    return this.length >= this.queuedMax;
  }

  push(request: QueuedRequest): void {
    if (this.full) throw new Error(`a request queue over its bound of ${this.queuedMax}`);
    this.items.push(request);
  }

  peek(): QueuedRequest | undefined {
    return this.items[this.head];
  }

  shift(): QueuedRequest | undefined {
    const request = this.items[this.head];
    if (request === undefined) return undefined;
    this.items[this.head++] = undefined as unknown as QueuedRequest;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return request;
  }

  /** Every queued request, removed (the connection closed). */
  drain(): QueuedRequest[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return rest;
  }
}
