// The time-budget rule of `cowmap conform`: one budget for the whole run, shared
// in order.
//
//   1. The cheap checks (traces, protocol rules) of every level run first, whole:
//      their time comes off the budget before anything is shared. Only a budget
//      they spend entirely stops them (between cases; with --quick, never).
//   2. Then the bounded checks (long histories, path tests, failpoint sweep,
//      fast-check), level by level. At the start of each level, the level gets the
//      time left times its weight over the weights of the levels still to run
//      (rules 3, crash 3, failpoint 3, power 2, consistent 2); a skipped level takes nothing.
//   3. A level keeps back time for its long history (2.5 times one history as
//      the level's traces estimate it, at most half the level's share). Path tests 3, failpoint sweep 4 and fast-check 3 share the rest by
//      weight, each getting the level's time left (less the reserve) times its
//      weight over the weights of the checks still to run. The long history runs
//      last and takes all the level has left. Time a check does not use flows
//      to the next.
//   4. Inside path tests and fast-check each geometry gets an equal part of what
//      the check has left; the sweep goes situation by situation, each whole on
//      one geometry, and the long histories geometry by geometry, from a start
//      that changes with the seed and the level, while their time lasts.
//   5. A bounded check stops between units (a path, a sequence, a sweep run) at its
//      deadline, and does not start a unit it expects (from the steps per second
//      the level measured so far, fast-check's included) to end past it.
//   6. Shrinking a failure may use the rest of the run (at least a quarter of the
//      check's share); with --keep-going it keeps to the check's share, so that the
//      checks after it still run.
//
// Pure: the runner gives the clock.

import type { CheckKind, Level } from './plan.ts';

/** The budget without --time-budget: a default run ends within 5 minutes against the Python example. */
export const defaultBudgetSeconds = 240;

export const levelWeights: Readonly<Record<Level, number>> = {
  rules: 3,
  crash: 3,
  failpoint: 3,
  power: 2,
  consistent: 2,
};

/** Weights of the bounded checks inside a level (the cheap ones take what they need). */
export const checkWeights: Readonly<Record<CheckKind, number>> = {
  traces: 0,
  protocol: 0,
  paths: 3,
  sweep: 4,
  'fast-check': 3,
  history: 0,
};

/**
 * The reserve is this many times a history's estimate: the estimate comes from
 * the level's traces, whose steps are cheaper than a history's on a large
 * volume, and the checks before it may overrun their shares by one unit.
 */
export const historyReserveFactor = 2.5;

/** The most of a level's share kept back for its long history. */
export const historyLevelFractionMax = 0.5;

/**
 * The time a level keeps back for its long history, which runs last: one
 * history as the level's steps per second so far estimate it, times
 * historyReserveFactor, and never more than half the level's share.
 */
export function historyReserveMs(levelShareMs: number, historyEstimateMs: number): number {
  return Math.min(levelShareMs * historyLevelFractionMax, historyEstimateMs * historyReserveFactor);
}

/**
 * A bounded check's allotment: its weighted share of the level's time left less
 * the history's reserve; the long history, last, takes all the level has left.
 */
export function checkAllotmentMs(
  kind: CheckKind,
  levelRemainingMs: number,
  weightsLeft: number,
  reserveMs: number,
): number {
  if (kind === 'history') return Math.max(0, levelRemainingMs);
  return share(levelRemainingMs - reserveMs, checkWeights[kind], weightsLeft);
}

/** The part of the budget kept back at the end of the run for saving a failure and closing the adapter. */
export const reserveFraction = 0.05;

/** `remainingMs` shared by weight: the part of `weight` among `weightsLeft` (all weights still to run, this one included). */
export function share(remainingMs: number, weight: number, weightsLeft: number): number {
  if (weightsLeft <= 0 || remainingMs <= 0) return 0;
  return (Math.max(0, remainingMs) * weight) / weightsLeft;
}

/** The shrink budget of a failure found in a check with `allotmentMs`, when the run has `runRemainingMs` left at its start. */
export function shrinkBudgetMs(
  allotmentMs: number,
  runRemainingMs: number,
  budgetMs: number,
  keepGoing: boolean,
): number {
  const rest = runRemainingMs - allotmentMs - reserveFraction * budgetMs;
  const floor = allotmentMs / 4;
  return Math.max(floor, keepGoing ? Math.min(allotmentMs, rest) : rest);
}

/** A deadline on a monotonic clock (milliseconds, performance.now()). */
export class Deadline {
  constructor(
    readonly atMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  remainingMs(): number {
    return Math.max(0, this.atMs - this.now());
  }

  passed(): boolean {
    return this.now() >= this.atMs;
  }

  /** Whether a unit estimated to take `estimateMs` ends before the deadline. */
  fits(estimateMs: number): boolean {
    return this.now() + estimateMs <= this.atMs;
  }
}

/**
 * The steps per second measured so far, for estimating how long a unit takes.
 * A level measures its own (a step with a kill or a failpoint restarts the
 * adapter, and costs many steps without); until it has, it asks `fallback` (the
 * run's), and until anything was measured, every unit fits.
 */
export class StepRate {
  private steps = 0;
  private ms = 0;

  constructor(private readonly fallback: StepRate | null = null) {}

  record(steps: number, ms: number): void {
    if (steps <= 0 || ms <= 0) return;
    this.steps += steps;
    this.ms += ms;
    this.fallback?.record(steps, ms);
  }

  /** Milliseconds `steps` are expected to take (0 when nothing was measured yet). */
  estimateMs(steps: number): number {
    if (this.steps === 0) return this.fallback?.estimateMs(steps) ?? 0;
    return (steps * this.ms) / this.steps;
  }

  get stepsPerSecond(): number {
    return this.ms === 0 ? (this.fallback?.stepsPerSecond ?? 0) : (this.steps * 1000) / this.ms;
  }
}
