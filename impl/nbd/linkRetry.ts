// When `cowmap serve` tries a cycle again after its link to a remote secondary
// failed (cycles.ts). The volume's replica makes one attempt per call (serve opens
// it with a retry budget of 0), so that no slice blocks the event loop for longer
// than the link's connect or request timeout; the waiting between attempts happens
// here, on a timer, while clients keep being served. The delay doubles from
// `firstMs` up to `maxMs` and starts again from `firstMs` once an attempt succeeds.
// A fault is logged once per change of state (down, a different error, back up),
// not once per attempt.

import type { ReplicaLinkError } from '../errors.ts';

export interface BackoffPolicy {
  /** The wait before the first retry, in ms. */
  readonly firstMs: number;
  /** The longest wait between two attempts, in ms. */
  readonly maxMs: number;
}

/** 0.5 s, 1 s, 2 s, ... up to 30 s between attempts. */
export const cycleRetryBackoff: BackoffPolicy = { firstMs: 500, maxMs: 30_000 };

/** The wait before the retry that follows the `failedAttempts`-th failure in a row (1 for the first). */
export function backoffDelayMs(policy: BackoffPolicy, failedAttempts: number): number {
  if (failedAttempts <= 1) return policy.firstMs;
  // 2 ** 40 ms is past any maxMs that makes sense: no overflow to Infinity.
  return Math.min(policy.maxMs, policy.firstMs * 2 ** Math.min(failedAttempts - 1, 40));
}

/** What serve.status and `cowmap status` show of the retries (serveStatus.ts). */
export interface RetryState {
  /** Failed attempts in a row since the last success (0: the link works, or no attempt failed yet). */
  readonly failedAttempts: number;
  /** The last fault as `CODE: message`, null when none since the server started. */
  readonly lastError: string | null;
  readonly lastErrorAtMs: number | null;
  /** When the link went down (the first failure of the current run of failures); null while up. */
  readonly downSinceMs: number | null;
  /** When the paused cycle is tried again; null when no retry is waiting. */
  readonly nextRetryAtMs: number | null;
}

/** What changed with a failure or a success, for the one log line per change. */
export type RetryEvent =
  | { kind: 'down'; delayMs: number }
  | { kind: 'changed'; delayMs: number }
  | { kind: 'same'; delayMs: number }
  | { kind: 'back'; downMs: number; failedAttempts: number }
  | { kind: 'fine' };

export class LinkRetry {
  private readonly policy: BackoffPolicy;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private state: RetryState = {
    failedAttempts: 0,
    lastError: null,
    lastErrorAtMs: null,
    downSinceMs: null,
    nextRetryAtMs: null,
  };

  constructor(policy: BackoffPolicy, now: () => number = Date.now) {
    if (!(policy.firstMs > 0 && policy.maxMs >= policy.firstMs))
      throw new Error(`backoff ${policy.firstMs} ms to ${policy.maxMs} ms: expected 0 < first <= max`);
    this.policy = policy;
    this.now = now;
  }

  get status(): RetryState {
    return this.state;
  }

  get waiting(): boolean {
    return this.timer !== null;
  }

  /** A link fault: counts it and tells what to log. The caller schedules the retry with `retryIn`. */
  failed(error: ReplicaLinkError): RetryEvent {
    const text = `${error.code}: ${error.message}`;
    const nowMs = this.now();
    const before = this.state;
    const failedAttempts = before.failedAttempts + 1;
    const delayMs = backoffDelayMs(this.policy, failedAttempts);
    this.state = {
      failedAttempts,
      lastError: text,
      lastErrorAtMs: nowMs,
      downSinceMs: before.downSinceMs ?? nowMs,
      nextRetryAtMs: before.nextRetryAtMs,
    };
    if (before.downSinceMs === null) return { kind: 'down', delayMs };
    return { kind: before.lastError === text ? 'same' : 'changed', delayMs };
  }

  /** An attempt that reached the far side and succeeded: the backoff starts again from its first step. */
  succeeded(): RetryEvent {
    const before = this.state;
    this.state = { ...before, failedAttempts: 0, downSinceMs: null };
    if (before.downSinceMs === null) return { kind: 'fine' };
    return { kind: 'back', downMs: this.now() - before.downSinceMs, failedAttempts: before.failedAttempts };
  }

  /**
   * Runs `retry` after `delayMs` (one pending retry at most). The timer keeps the
   * process alive, as a running cycle does: a server that stops for good leaves the
   * cycle (CycleRunner.leave cancels the retry) for the next open to resume.
   */
  retryIn(delayMs: number, retry: () => void): void {
    this.cancel();
    this.state = { ...this.state, nextRetryAtMs: this.now() + delayMs };
    this.timer = setTimeout(() => {
      this.timer = null;
      this.state = { ...this.state, nextRetryAtMs: null };
      retry();
    }, delayMs);
  }

  cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.state = { ...this.state, nextRetryAtMs: null };
  }
}
