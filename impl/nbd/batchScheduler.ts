// The one pump of the NBD server (docs/nbd.md, "Request ordering" and "Cycles"):
// the requests of all connections are run in batches (group commit, engine.ts),
// taken round-robin from the connections' queues, one request per connection per
// round, at most `batchRequestsMax` per batch; between client batches the running
// cycle gets transfer slices, fairly: a slice runs when the client batches since
// the last one took at least as long as it did (so the cycle gets about half of
// the time while clients saturate), or at once in a turn without client requests.
// Each turn is one setImmediate callback, so sockets are read between turns.

import { performance } from 'node:perf_hooks';
import type { BatchEntry, Engine } from './engine.ts';
import * as nbd from './protocol.ts';
import type { RequestQueue } from './requestQueue.ts';

/** The cycle runner as the pump sees it. */
export interface CycleSlices {
  readonly isRunning: boolean;
  /** One transfer slice (one transferRegions call); completes the cycle after its last. */
  step(): void;
}

export interface SchedulerTotals {
  requests: number;
  bytesWritten: number;
  batches: number;
}

type Take = 'took' | 'tookLast' | 'blocked' | 'empty';

export class BatchScheduler {
  private readonly engine: Engine;
  private readonly cycles: CycleSlices;
  private readonly batchRequestsMax: number;
  /** The queues with requests, in round-robin order. At most one entry per connection. */
  private ring: RequestQueue[] = [];
  private ringStart = 0;
  private scheduled = false;
  /** Client batch time not yet matched by cycle slice time, in ms (fair interleaving). */
  private creditMs = 0;
  private lastSliceMs = 0;
  readonly totals: SchedulerTotals = { requests: 0, bytesWritten: 0, batches: 0 };

  /** The clock of the fair share, in ms (tests give their own). */
  private readonly now: () => number;

  constructor(engine: Engine, cycles: CycleSlices, batchRequestsMax: number, now = () => performance.now()) {
    this.engine = engine;
    this.cycles = cycles;
    this.batchRequestsMax = Math.max(1, batchRequestsMax);
    this.now = now;
  }

  /** A connection queued a request. */
  queued(queue: RequestQueue): void {
    if (!queue.inRing) {
      queue.inRing = true;
      this.ring.push(queue);
    }
    this.wake();
  }

  /** Makes sure a turn runs soon (a request queued, or a cycle started). */
  wake(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.turn());
  }

  private turn(): void {
    this.scheduled = false;
    const clientTurn = this.ring.length > 0;
    if (clientTurn) {
      const started = this.now();
      const entries = this.collect();
      if (entries.length > 0) {
        const counts = this.engine.runBatch(entries);
        this.totals.requests += counts.requests;
        this.totals.bytesWritten += counts.bytesWritten;
        this.totals.batches++;
      }
      if (this.cycles.isRunning) this.creditMs += this.now() - started;
    }
    // Not `ring.length === 0`: a batch often empties the queues, and the clients'
    // next requests are on their way; a slice waits for its credit then.
    if (this.cycles.isRunning && (!clientTurn || this.creditMs >= this.lastSliceMs)) {
      const started = this.now();
      this.cycles.step();
      this.lastSliceMs = this.now() - started;
      this.creditMs = this.cycles.isRunning ? this.creditMs - this.lastSliceMs : 0;
    }
    if (this.ring.length > 0 || this.cycles.isRunning) this.wake();
  }

  /** Up to `batchRequestsMax` entries, round-robin over the queues; empty queues leave the ring. */
  private collect(): BatchEntry[] {
    const entries: BatchEntry[] = [];
    const reads: [number, number][] = [];
    const done = new Set<RequestQueue>();
    const count = this.ring.length;
    let progress = true;
    while (progress && entries.length < this.batchRequestsMax) {
      progress = false;
      for (let index = 0; index < count && entries.length < this.batchRequestsMax; index++) {
        const queue = this.ring[(this.ringStart + index) % count]!;
        if (done.has(queue)) continue;
        const take = this.takeOne(queue, entries, reads);
        if (take === 'took' || take === 'tookLast') progress = true;
        if (take !== 'took') done.add(queue);
      }
    }
    this.ring = this.ring.filter((queue) => {
      queue.inRing = queue.length > 0 && queue.origin.open;
      return queue.inRing;
    });
    this.ringStart = this.ring.length === 0 ? 0 : (this.ringStart + 1) % this.ring.length;
    if (entries.length > this.batchRequestsMax) throw new Error(`a batch of ${entries.length} requests`);
    return entries;
  }

  /**
   * The next request of `queue` into the batch. A zeroing gives one chunk and
   * ends the queue's share of this batch ('tookLast'); a request that conflicts
   * with the batch waits for the next one ('blocked'); refused requests are
   * answered on the way.
   */
  private takeOne(queue: RequestQueue, entries: BatchEntry[], reads: [number, number][]): Take {
    for (;;) {
      const head = queue.peek();
      if (head === undefined) return 'empty';
      if (!queue.origin.open) {
        queue.drain();
        return 'empty';
      }
      if (head.finished) {
        queue.shift();
        continue;
      }
      const zeroing = head.type === nbd.CMD_TRIM || head.type === nbd.CMD_WRITE_ZEROES;
      if (head.zeroedBytes === 0 && !this.engine.admit(head)) {
        queue.shift();
        continue;
      }
      const start = Number(head.offset) + head.zeroedBytes;
      if (zeroing || head.type === nbd.CMD_WRITE) {
        const length = zeroing ? Math.min(this.engine.chunkBytes, head.length - head.zeroedBytes) : head.length;
        // A write never runs before a READ of the batch it overlaps: a connection's
        // READ sent before its WRITE must not see it (the batch runs writes first).
        if (reads.some(([readStart, readEnd]) => start < readEnd && readStart < start + length)) return 'blocked';
        if (!zeroing) {
          queue.shift();
          entries.push({ request: head, chunk: null });
          return 'took';
        }
        if (head.zeroedBytes + length >= head.length) queue.shift();
        entries.push({ request: head, chunk: { offset: start, length } });
        return 'tookLast';
      }
      queue.shift();
      if (head.type === nbd.CMD_READ || head.type === nbd.CMD_BLOCK_STATUS) reads.push([start, start + head.length]);
      entries.push({ request: head, chunk: null });
      return 'took';
    }
  }
}
