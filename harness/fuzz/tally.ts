// What a fuzz run counts while fast-check runs its sequences: runs (before the
// first failure) and shrinks (after it), the oracle's steps, invariant checks
// and crash states, the transitions taken, and the shortest passing sequence.

import type { Oracle } from '../oracle/oracle.ts';
import type { SequenceRun } from './command.ts';
import type { FuzzOptions } from './options.ts';

/** Progress reports come at most this often. */
const progressIntervalMs = 200;

export class FuzzTally {
  runs = 0;
  shrinks = 0;
  steps = 0;
  invariantChecks = 0;
  crashStates = 0;
  /** The fewest operations and the fewest completed cycles of a passing searched sequence (null: none passed). */
  shortestRun: { operations: number; cycles: number } | null = null;
  /** Transition ids with the number of runs that took each. */
  readonly hits = new Map<string, number>();
  /** When the first failure was met (null: none yet, the search goes on). */
  failedAt: number | null = null;
  private lastProgress = 0;

  constructor(
    private readonly options: Pick<FuzzOptions, 'onProgress'>,
    readonly startedMs: number,
  ) {}

  seconds(): number {
    return (performance.now() - this.startedMs) / 1000;
  }

  /** A sequence that ran to its end without a failure. */
  passed(real: SequenceRun): void {
    if (this.failedAt !== null) return;
    this.shortestRun = {
      operations: Math.min(this.shortestRun?.operations ?? Infinity, real.operations),
      cycles: Math.min(this.shortestRun?.cycles ?? Infinity, real.cyclesCompleted),
    };
  }

  /** After every sequence, passed or failed: counts it as a run or a shrink and adds what its oracle did. */
  ran(oracle: Oracle, failed: boolean): void {
    if (this.failedAt === null) this.runs++;
    else this.shrinks++;
    if (failed && this.failedAt === null) this.failedAt = performance.now();
    this.steps += oracle.stats.steps;
    this.invariantChecks += oracle.stats.invariantChecks;
    this.crashStates += oracle.stats.crashStates;
    for (const id of oracle.covered) this.hits.set(id, (this.hits.get(id) ?? 0) + 1);
    this.progress();
  }

  private progress(): void {
    const now = performance.now();
    if (this.options.onProgress === undefined || now - this.lastProgress < progressIntervalMs) return;
    this.lastProgress = now;
    this.options.onProgress({
      phase: this.failedAt === null ? 'search' : 'shrink',
      runs: this.runs,
      shrinks: this.shrinks,
      steps: this.steps,
      seconds: this.seconds(),
    });
  }
}
