// What every check of a run shares: the implementation (kept running), the
// settings, the clock, the coverage, and the progress line.

import type { Geometry } from '../../model/types.ts';
import type { AdapterSutOptions } from '../adapter/adapterSutOptions.ts';
import type { SystemUnderTest } from '../sut/systemUnderTest.ts';
import { addHits } from '../transitionCoverage.ts';
import type { Deadline, StepRate } from './budget.ts';
import type { CheckSpec } from './plan.ts';
import type { CaseResult, CheckFailure, CheckResult } from './result.ts';

export interface CheckContext {
  /** The adapter command, for the replay commands printed. */
  readonly command: readonly string[];
  /** The implementation, kept running across checks: its close() only ends the volume. */
  readonly sut: SystemUnderTest;
  readonly seed: number;
  readonly failuresDir: string;
  readonly quick: boolean;
  readonly keepGoing: boolean;
  readonly requestTimeoutMs: number;
  readonly transcript?: AdapterSutOptions['transcript'];
  /** A fast-check counterexample to replay (`--path`). */
  readonly fuzzPath?: string;
  readonly budgetMs: number;
  readonly runDeadline: Deadline;
  readonly rate: StepRate;
  /** Transition ids with the times taken, over the whole run. */
  readonly hits: Map<string, number>;
  readonly interrupted: () => boolean;
  /** Steps of the whole run so far (for the progress line). */
  stepsDone: number;
  readonly progress: (check: string, detail: string, stepsInFlight?: number) => void;
}

/** What a check ran on, and how it went, before it becomes a CheckResult. */
export interface CheckTally {
  readonly cases: CaseResult[];
  readonly geometries: Geometry[];
  runs: number;
  steps: number;
  crashPoints: number;
  cutByBudget: boolean;
}

export function newTally(): CheckTally {
  return { cases: [], geometries: [], runs: 0, steps: 0, crashPoints: 0, cutByBudget: false };
}

/** Counts a unit that ran: its steps, its transitions, its time (for estimates). */
export function countUnit(
  context: CheckContext,
  tally: CheckTally,
  unit: { runs: number; steps: number; crashPoints: number; covered: Iterable<string>; ms: number },
): void {
  tally.runs += unit.runs;
  tally.steps += unit.steps;
  tally.crashPoints += unit.crashPoints;
  context.stepsDone += unit.steps;
  context.rate.record(unit.steps, unit.ms);
  addHits(context.hits, unit.covered);
}

export function firstFailure(cases: readonly CaseResult[]): CheckFailure | null {
  return cases.find((item) => item.failure !== null)?.failure ?? null;
}

export function checkResult(
  spec: CheckSpec,
  tally: CheckTally,
  describe: (geometry: Geometry) => string,
  seconds: number,
  allotmentMs: number | null,
): CheckResult {
  const failure = firstFailure(tally.cases);
  return {
    id: spec.id,
    level: spec.level,
    name: spec.title,
    status:
      failure !== null
        ? 'failed'
        : tally.runs === 0 && tally.cases.every((item) => item.skipped !== null)
          ? 'not run'
          : 'passed',
    runs: tally.runs,
    steps: tally.steps,
    crashPoints: tally.crashPoints,
    seconds,
    allotmentSeconds: allotmentMs === null ? null : allotmentMs / 1000,
    cutByBudget: tally.cutByBudget,
    geometries: tally.geometries.map(describe),
    cases: tally.cases,
    failure,
  };
}
