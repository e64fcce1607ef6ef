// The recording storage double: a log of every call the volume makes (opens,
// reads and the durable calls, each with its full path), so that a test can
// check the durable order of an operation and how much I/O it does. Put it
// outside a FailingStorage to log a failed call too, inside to log only the
// calls that were made.

import { HookedStorage } from './hookedStorage.ts';
import { isDurableCall, type StorageCall } from './storageCall.ts';

export class RecordingStorage extends HookedStorage {
  /** Every call in order, reads and opens included. */
  readonly log: StorageCall[] = [];
  private durableCount = 0;

  /** The number of durable calls made so far (one failed below this storage included). */
  get durableCalls(): number {
    return this.durableCount;
  }

  /** A point in the log, for `since` and `durableSince`. */
  mark(): number {
    return this.log.length;
  }

  /** The calls since `mark`. */
  since(mark: number): StorageCall[] {
    return this.log.slice(mark);
  }

  /** The durable calls since `mark` (0: since construction). */
  durableSince(mark = 0): StorageCall[] {
    return this.log.slice(mark).filter(isDurableCall);
  }

  protected before(call: StorageCall): void {
    this.log.push(call);
    if (isDurableCall(call)) this.durableCount++;
  }
}
