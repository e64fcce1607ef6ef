// A receiver store as the NBD engine's export target (impl/nbd/engine.ts): the writes
// of a batch go to the store one by one, in the order the connections sent them (a
// control block write precedes, on the same connection, the writes it governs:
// docs/receive.md, "The order it relies on"). A refusal of the store (a write outside
// a cycle, another volume's control block) fails that write alone: NBD_EINVAL and a
// log line (the engine's); so does a full journal, with NBD_EIO. A storage error fails it with NBD_EIO, and from then on every write and
// FLUSH fails with NBD_EIO until the receiver is restarted: after a failed write or
// fsync the state of the files is unknown (a later fsync may succeed without the lost
// pages, "fsyncgate"), so only recovery at the next open may say what is durable.
//
// Connections are numbered at accept (ReceiveServer.accept calls `accepted`): the
// primary opens a new connection only after giving up the one before, so a larger
// number is a later connection of the primary. The writer is the connection that sent
// the last control block the store took. Image writes are taken from the writer only;
// a control block from the writer or a later connection (the primary's start block on
// a new connection); every write of a connection older than the writer, control blocks
// included, is refused (`refusalOf`): it is a stale write of a connection the primary
// gave up, delivered late, and as a control block it could restart an older cycle.
//
// It also watches the signals: after a write to the control region it asks the store
// where replication stands and reports each cycle started and completed (`events`).

import { assert } from '../assert.ts';
import { CowmapError, isStorageError } from '../errors.ts';
import type { ExportTarget, RequestOrigin, TargetWrite } from '../nbd/engine.ts';
import { controlBlockSize } from '../remote/controlBlock.ts';
import type { ReceiverStatus } from './receiverStatus.ts';
import type { ReceiverStore } from './receiverStore.ts';

/** What the server uses of the store (the unit tests give an in-memory one: receiveServerFake.ts). */
export type ServedStore = Pick<
  ReceiverStore,
  'exportSize' | 'write' | 'writeZeroes' | 'flush' | 'readLatest' | 'status'
>;

/** What the target tells its server about the cycles (log lines, the status file). */
export interface ReceiveEvents {
  cycleStarted(cycle: number, status: ReceiverStatus): void;
  /** `bytes`: image bytes written while the cycle ran; `seconds`: from its first signal to its commit (null if before this run). */
  cycleCompleted(cycle: number, bytes: number, seconds: number | null, status: ReceiverStatus): void;
  /** The first storage error: the receiver takes no more writes. */
  stopped(error: unknown): void;
}

export class ReceiveServerTarget implements ExportTarget {
  readonly store: ServedStore;
  readonly trims = false;
  /** The storage error after which writes and flushes fail (null while healthy). */
  failure: unknown = null;
  /** Image bytes written since the running cycle started. */
  cycleBytes = 0;
  /** Image and control bytes written since the server started. */
  bytesReceived = 0;
  private readonly events: ReceiveEvents;
  private readonly controlOffset: number;
  private last: ReceiverStatus;
  private cycleStartedMs: number | null = null;
  /** Each connection's number, given at accept in order (see the head of this file). */
  private readonly connectionNumbers = new WeakMap<RequestOrigin, number>();
  private connectionsAccepted = 0;
  /** The number of the connection that sent the last control block the store took; 0 before any. */
  private writerNumber = 0;

  constructor(store: ServedStore, events: ReceiveEvents) {
    this.store = store;
    this.events = events;
    this.controlOffset = store.exportSize - controlBlockSize;
    this.last = store.status();
  }

  get sizeBytes(): number {
    return this.store.exportSize;
  }

  /** Where replication stands, as of the last control write (or the open). */
  get status(): ReceiverStatus {
    return this.last;
  }

  /** A connection was accepted: it gets the next number. */
  accepted(origin: RequestOrigin): void {
    this.connectionNumbers.set(origin, ++this.connectionsAccepted);
  }

  writeMany(writes: readonly TargetWrite[], failed: (index: number, error: unknown) => void): void {
    for (const [index, write] of writes.entries()) {
      const control = write.offset + write.bytes.length > this.controlOffset;
      const number = this.connectionNumbers.get(write.origin);
      assert(number !== undefined, 'a write from a connection the receive server did not accept');
      const refusal = this.failure !== null ? this.stoppedError() : this.refusalOf(number, control);
      if (refusal !== null) {
        failed(index, refusal);
        continue;
      }
      try {
        if (write.zeroes) this.store.writeZeroes(write.offset, write.bytes.length);
        else this.store.write(write.offset, write.bytes);
      } catch (error) {
        if (stopsReceiver(error)) this.stop(error);
        failed(index, error);
        continue;
      }
      this.bytesReceived += write.bytes.length;
      if (control) {
        this.writerNumber = number;
        this.afterControlWrite();
      } else this.cycleBytes += write.bytes.length;
    }
  }

  /**
   * Null when a write of connection `number` may go to the store. Refused (NBD_EINVAL):
   * any write of a connection older than the writer, a stale one of a primary's earlier
   * connection delivered after the primary reconnected (an image write would put older
   * bytes over the cycle's newer ones; a control block could restart an older cycle or
   * drop the running cycle's journal); an image write of a connection that has sent no
   * control block yet (the primary sends its start block first on every connection).
   */
  private refusalOf(number: number, control: boolean): CowmapError | null {
    if (number < this.writerNumber)
      return new CowmapError(
        'E_BAD_REQUEST',
        `a write of connection ${number}, older than connection ${this.writerNumber} that sent the last control block ` +
          '(a stale write of a connection the primary gave up)',
      );
    if (control || number === this.writerNumber) return null;
    return new CowmapError(
      'E_BAD_REQUEST',
      `a write of the image from connection ${number} before any control block on it ` +
        `(connection ${this.writerNumber === 0 ? 'none' : this.writerNumber} sent the last one)`,
    );
  }

  read(offset: number, length: number): Uint8Array {
    return this.store.readLatest(offset, length);
  }

  flush(): void {
    if (this.failure !== null) throw this.stoppedError();
    try {
      this.store.flush();
    } catch (error) {
      this.stop(error);
      throw error;
    }
  }

  private stop(error: unknown): void {
    this.failure = error;
    this.events.stopped(error);
  }

  private stoppedError(): CowmapError {
    const detail = this.failure instanceof Error ? this.failure.message : String(this.failure);
    return new CowmapError('E_IO', `the receiver takes no writes after a storage error (${detail}): restart it`);
  }

  /** A control block was written: a cycle may have started or completed. */
  private afterControlWrite(): void {
    const before = this.last;
    const now = this.store.status();
    this.last = now;
    if (now.completedCycle !== null && now.completedCycle !== before.completedCycle) {
      const seconds = this.cycleStartedMs === null ? null : (Date.now() - this.cycleStartedMs) / 1000;
      this.events.cycleCompleted(now.completedCycle, this.cycleBytes, seconds, now);
      this.cycleBytes = 0;
      this.cycleStartedMs = null;
    }
    if (now.runningCycle !== null && now.runningCycle !== before.runningCycle) {
      this.cycleBytes = 0;
      this.cycleStartedMs = Date.now();
      this.events.cycleStarted(now.runningCycle, now);
    }
  }
}

/**
 * A storage error (raw, or the store's E_IO caused by one): the files' state is unknown.
 * Not a refusal (E_BAD_REQUEST, E_CORRUPT, E_RANGE: NBD_EINVAL) nor an E_IO of the
 * store's own that changed nothing (a full journal: NBD_EIO for that write alone).
 */
function stopsReceiver(error: unknown): boolean {
  if (!(error instanceof CowmapError)) return true;
  return error.code === 'E_IO' && isStorageError(error.cause);
}
