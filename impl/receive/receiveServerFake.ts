// An in-memory stand-in of the ReceiverStore (impl/receive/receiverStore.ts) with the
// semantics docs/receive.md describes, for the NBD front end's unit tests: they check
// the server's framing, ordering, refusals and stop after a storage error, not the
// store's durability (the store's own tests do). It can fail its next write or flush
// with a storage error (EIO). Test-only: nothing outside *.test.ts imports this file.

import { CowmapError } from '../errors.ts';
import { controlBlockSize, decodeControlBlock } from '../remote/controlBlock.ts';
import type { ReceiverStatus } from './receiverStatus.ts';

export class FakeReceiverStore {
  readonly exportSize: number;
  /** The image as the running cycle's writes left it, the control region as last written. */
  private readonly latest: Uint8Array;
  private readonly consistent: Uint8Array;
  private journal: { offset: number; bytes: Uint8Array }[] = [];
  private state: ReceiverStatus;
  /** The next write (or flush) throws a storage error: a failing disk. */
  failNext: 'write' | 'flush' | null = null;
  flushes = 0;
  closed = false;

  constructor(exportSize: number) {
    this.exportSize = exportSize;
    this.latest = new Uint8Array(exportSize);
    this.consistent = new Uint8Array(exportSize - controlBlockSize);
    this.state = {
      exportSize,
      identity: null,
      completedCycle: null,
      completedSwapTimeMs: 0,
      runningCycle: null,
      journalBytes: 0,
    };
  }

  private get imageSize(): number {
    return this.exportSize - controlBlockSize;
  }

  write(offset: number, bytes: Uint8Array): void {
    this.failIf('write');
    if (offset < 0 || offset + bytes.length > this.exportSize) throw new CowmapError('E_RANGE', 'past the end');
    if (offset + bytes.length > this.imageSize) {
      this.controlWrite(offset, bytes);
      return;
    }
    if (this.state.runningCycle === null) throw new CowmapError('E_BAD_REQUEST', 'a write outside a cycle');
    this.latest.set(bytes, offset);
    this.journal.push({ offset, bytes: bytes.slice() });
    this.state = { ...this.state, journalBytes: this.state.journalBytes + bytes.length };
  }

  writeZeroes(offset: number, length: number): void {
    this.write(offset, new Uint8Array(length));
  }

  flush(): void {
    this.failIf('flush');
    this.flushes++;
  }

  readLatest(offset: number, length: number): Uint8Array {
    return this.latest.slice(offset, offset + length);
  }

  readConsistent(offset: number, length: number): Uint8Array {
    return this.consistent.slice(offset, offset + length);
  }

  status(): ReceiverStatus {
    return this.state;
  }

  close(): void {
    this.closed = true;
  }

  private failIf(kind: 'write' | 'flush'): void {
    if (this.failNext !== kind) return;
    this.failNext = null;
    throw Object.assign(new Error(`EIO: i/o error, ${kind}`), { code: 'EIO' });
  }

  /** The control region: a valid block is a signal; anything else is stored as bytes. */
  private controlWrite(offset: number, bytes: Uint8Array): void {
    const region = this.latest.slice(this.imageSize);
    region.set(bytes, offset - this.imageSize);
    const decoded = decodeControlBlock(region);
    if (decoded.kind !== 'block') {
      this.latest.set(bytes, offset);
      return;
    }
    const block = decoded.block;
    const identity = this.state.identity;
    if (identity !== null && !Buffer.from(identity.volumeId).equals(Buffer.from(block.volumeId)))
      throw new CowmapError('E_CORRUPT', 'a control block of another volume');
    this.latest.set(bytes, offset);
    const known = identity ?? { volumeId: block.volumeId, regions: block.regions, regionSize: block.regionSize };
    if (block.state === 'sending') {
      if (this.state.runningCycle !== block.cycle) this.journal = [];
      this.state = { ...this.state, identity: known, runningCycle: block.cycle };
      return;
    }
    if (this.state.runningCycle === block.cycle) {
      for (const { offset: at, bytes: data } of this.journal) this.consistent.set(data, at);
      this.journal = [];
      this.state = {
        exportSize: this.exportSize,
        identity: known,
        completedCycle: block.cycle,
        completedSwapTimeMs: block.swapTimeMs,
        runningCycle: null,
        journalBytes: 0,
      };
    }
  }
}
