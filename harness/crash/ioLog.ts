// The crash layer's log of durable calls (harness/crash/crashStorage.ts), bounded:
// a test or the exploration reads the order of the calls from it.

import type { DurableIoKind } from '../storage/storageCall.ts';
import { errorCode } from './injectedFaults.ts';

export interface IoLogEntry {
  /** 1-based number of the durable call since construction (the `ioCount` it made). */
  seq: number;
  kind: DurableIoKind;
  /** The path as given (rename: the source). */
  path: string;
  /** rename: the destination. */
  to?: string;
  /** write: the file offset. */
  position?: number;
  /** write: bytes written; truncate: the new length. */
  length?: number;
  /** The error code when the call failed: an injected fault or the wrapped storage's error. */
  error?: string;
}

export class IoLog {
  /** Durable calls, in order; at most entryCountMax entries (see droppedCount). */
  readonly entries: IoLogEntry[] = [];
  /** Entries not stored because the log was full. */
  droppedCount = 0;

  constructor(private readonly entryCountMax: number) {}

  add(entry: IoLogEntry): void {
    if (this.entries.length < this.entryCountMax) this.entries.push(entry);
    else this.droppedCount++;
  }

  /** Returns the entries and empties the log (and its dropped count). */
  take(): IoLogEntry[] {
    const entries = this.entries.splice(0, this.entries.length);
    this.droppedCount = 0;
    return entries;
  }
}

/** Runs a call of the wrapped storage, noting its error code in the call's log entry. */
export function loggedCall<T>(entry: IoLogEntry, call: () => T): T {
  try {
    return call();
  } catch (error) {
    entry.error = errorCode(error) ?? 'ERROR';
    throw error;
  }
}
