// What a client wrote over NBD and what the server promised about it, and the check
// of a volume against it after a crash. NBD's durability (doc/proto.md, "Ordering
// of messages and writes"): a FLUSH makes durable every write that was answered
// before the FLUSH was sent; other writes may or may not be there, byte by byte.
// The writer keeps no two overlapping writes in flight at once, so the writes to a
// byte are ordered by the order they were sent in (`seq`). Test-only: nothing
// outside *.test.ts imports this file.

/** What a crash keeps: a power loss keeps what was flushed; a process kill, what the OS had (every answered write). */
export type Survivors = 'flushed' | 'acknowledged';

export interface SentWrite {
  readonly seq: number;
  readonly offset: number;
  readonly bytes: Uint8Array;
  acknowledged: boolean;
}

/** The writes of one client and the flushes that completed. */
export class AcknowledgedWrites {
  readonly writes: SentWrite[] = [];
  private readonly acknowledgedSeqs: number[] = [];
  private readonly durableSeqs = new Set<number>();
  flushesCompleted = 0;

  /** Records a write as it is sent. */
  sent(offset: number, bytes: Uint8Array): SentWrite {
    const write = { seq: this.writes.length, offset, bytes, acknowledged: false };
    this.writes.push(write);
    return write;
  }

  acknowledge(write: SentWrite): void {
    write.acknowledged = true;
    this.acknowledgedSeqs.push(write.seq);
  }

  /** As a FLUSH is sent: the writes it covers (those answered so far); give them to `flushed` when it completes. */
  flushSent(): readonly number[] {
    return [...this.acknowledgedSeqs];
  }

  flushed(covered: readonly number[]): void {
    for (const seq of covered) this.durableSeqs.add(seq);
    this.flushesCompleted++;
  }

  get durableCount(): number {
    return this.durableSeqs.size;
  }

  isDurable(write: SentWrite): boolean {
    return this.durableSeqs.has(write.seq);
  }

  /** Which writes must survive: those a completed FLUSH covers (any crash), or every answered one (a process kill). */
  private survives(write: SentWrite, kept: Survivors): boolean {
    return kept === 'flushed' ? this.isDurable(write) : write.acknowledged;
  }

  /**
   * The problems of `actual` (the whole volume, read after the crash), at most
   * `problemsMax`: a byte is right when it holds the last surviving write to it (or
   * zero when none did), or a byte of a write sent after that one.
   */
  check(actual: Uint8Array, kept: Survivors, problemsMax = 10): string[] {
    const expected = new Uint8Array(actual.length);
    const lastDurableSeq = new Int32Array(actual.length).fill(-1);
    for (const write of this.writes) {
      if (!this.survives(write, kept)) continue;
      expected.set(write.bytes, write.offset);
      lastDurableSeq.fill(write.seq, write.offset, write.offset + write.bytes.length);
    }
    const explained = new Uint8Array(actual.length);
    for (const write of this.writes) {
      if (this.survives(write, kept)) continue;
      for (let index = 0; index < write.bytes.length; index++) {
        const at = write.offset + index;
        if (write.seq > lastDurableSeq[at]! && actual[at] === write.bytes[index]) explained[at] = 1;
      }
    }
    const problems: string[] = [];
    for (let at = 0; at < actual.length && problems.length < problemsMax; at++) {
      if (actual[at] === expected[at] || explained[at] === 1) continue;
      const last = lastDurableSeq[at]!;
      problems.push(
        `byte ${at}: ${actual[at]}, expected ${expected[at]} (${last < 0 ? `no ${kept} write` : `${kept} write #${last}`})` +
          ' or a byte of a later write',
      );
    }
    return problems;
  }
}
