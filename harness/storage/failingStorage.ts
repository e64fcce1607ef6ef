// The fail-at-k storage double: the k-th durable call (or the first one a
// predicate accepts) throws instead of being made, once. Given an errno code it
// throws the error node:fs would (code, syscall, path), as a full disk or a failing
// device does; given anything else it throws that as it is (a test's own crash
// marker, say). For a crash that also loses what was not synced, wrap the crash
// layer (harness/crash/crashStorage.ts) instead: its armCrash crashes after the
// k-th call.

import { HookedStorage } from './hookedStorage.ts';
import { isDurableCall, type StorageCall } from './storageCall.ts';

/** Whether to fail `call`, the durable call number `durableIndex` (0: the first since construction). */
export type FailWhen = (call: StorageCall, durableIndex: number) => boolean;

/** An errno code such as 'ENOSPC' or 'EIO', or any other value to throw as it is. */
export type Failure = string | object;

function injectedError(code: string, call: StorageCall): Error {
  return Object.assign(new Error(`${code}: injected failure, ${call.kind} '${call.path}'`), {
    code,
    syscall: call.kind,
    path: call.path,
  });
}

export class FailingStorage extends HookedStorage {
  private durableCount = 0;
  private armed: { when: FailWhen; failure: Failure } | null = null;

  /** The number of durable calls seen so far, the failed one included. */
  get durableCalls(): number {
    return this.durableCount;
  }

  /** The durable call `afterDurable` from now (0: the next one) fails. */
  failAt(afterDurable: number, failure: Failure = 'ENOSPC'): void {
    const at = this.durableCount + afterDurable;
    this.failWhen((_, durableIndex) => durableIndex === at, failure);
  }

  /** The first later durable call that `when` accepts fails. */
  failWhen(when: FailWhen, failure: Failure = 'ENOSPC'): void {
    this.armed = { when, failure };
  }

  /** Stops failing; true when the armed failure never fired. */
  disarm(): boolean {
    const unfired = this.armed !== null;
    this.armed = null;
    return unfired;
  }

  protected before(call: StorageCall): void {
    if (!isDurableCall(call)) return;
    const durableIndex = this.durableCount++;
    const armed = this.armed;
    if (armed === null || !armed.when(call, durableIndex)) return;
    this.armed = null;
    throw typeof armed.failure === 'string' ? injectedError(armed.failure, call) : armed.failure;
  }
}
