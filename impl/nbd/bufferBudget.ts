// The one cap on the bytes the NBD server holds in memory for requests, across all
// connections (docs/nbd.md, "Limits"): a WRITE's payload, a READ's reply, and a
// small fixed share per queued request. A connection reserves before it reads a
// payload or queues a request; a reservation that does not fit waits in FIFO
// order and is granted as bytes are released. A reservation that fits may pass
// the waiters, but only for a cap's worth of bytes per head waiter: so a stalled
// large request at the head (a client that stops sending its payload, closed
// only by the request timeout) does not hold up a small READ of another client,
// and a stream of small requests cannot starve a large one. Every grant fits the
// cap alone, so a waiter is always granted once the others' replies have left:
// waiting never deadlocks.

export interface BudgetWaiter {
  readonly bytes: number;
  /** Called once the bytes are granted (counted as used). */
  readonly granted: () => void;
}

export class BufferBudget {
  readonly capBytes: number;
  usedBytes = 0;
  private readonly waitersMax: number;
  private waiters: BudgetWaiter[] = [];
  /** Bytes granted past the current head waiter; at `capBytes` nobody passes it any more. */
  private passedBytes = 0;

  /** `waitersMax`: one waiter per connection at most, so the connection limit bounds the queue. */
  constructor(capBytes: number, waitersMax: number) {
    if (!Number.isSafeInteger(capBytes) || capBytes <= 0) throw new Error(`a buffer cap of ${capBytes} bytes`);
    this.capBytes = capBytes;
    this.waitersMax = waitersMax;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Grants `waiter.bytes` now (true) or queues the waiter (false: `granted` is
   * called later). A reservation that fits passes the queued waiters only while
   * less than a cap's worth of bytes has passed the head one.
   */
  reserve(waiter: BudgetWaiter): boolean {
    if (waiter.bytes > this.capBytes)
      throw new Error(`a reservation of ${waiter.bytes} bytes over the cap ${this.capBytes}`);
    const passing = this.waiters.length > 0;
    const fits = this.usedBytes + waiter.bytes <= this.capBytes;
    if (fits && (!passing || this.passedBytes + waiter.bytes <= this.capBytes)) {
      this.usedBytes += waiter.bytes;
      if (passing) this.passedBytes += waiter.bytes;
      return true;
    }
    if (this.waiters.length >= this.waitersMax) throw new Error(`more than ${this.waitersMax} budget waiters`);
    this.waiters.push(waiter);
    return false;
  }

  /** Forgets a queued waiter (its connection closed); no effect when it is not queued. */
  cancel(waiter: BudgetWaiter): void {
    const index = this.waiters.indexOf(waiter);
    if (index < 0) return;
    this.waiters.splice(index, 1);
    if (index === 0) this.passedBytes = 0;
    this.grantWaiters();
  }

  release(bytes: number): void {
    if (bytes === 0) return;
    if (bytes < 0 || bytes > this.usedBytes) throw new Error(`release of ${bytes} bytes with ${this.usedBytes} used`);
    this.usedBytes -= bytes;
    this.grantWaiters();
  }

  private grantWaiters(): void {
    while (this.waiters.length > 0 && this.usedBytes + this.waiters[0]!.bytes <= this.capBytes) {
      const waiter = this.waiters.shift()!;
      this.passedBytes = 0;
      this.usedBytes += waiter.bytes;
      waiter.granted();
    }
  }
}

/**
 * The fixed share every queued request reserves besides its payload or reply: its
 * header, cookie, queue entry and reply header. It bounds the number of queued
 * requests by the cap too (a stream of FLUSHes reserves something).
 */
export const requestShareBytes = 256;
