// The results of a conformance run: one vocabulary for the runner, the console
// summary, the JSON report and the JUnit file.

import type { Difference } from '../oracle/oracle.ts';
import type { TransitionCoverage } from '../transitionCoverage.ts';
import type { Feature } from '../sut/systemUnderTest.ts';
import type { Level } from './plan.ts';

/** A failure as a user acts on it: where, what differs, the trace kept, and the commands that replay it. */
export interface CheckFailure {
  /** The step that failed ("line 12 'write A A1'", "step 7 'transfer 64'"), when there is one. */
  readonly step: string | null;
  /** The whole explanation, the expected / observed table included. */
  readonly message: string;
  readonly differences: readonly Difference[];
  /** The shortest failing trace kept (null when there is none: a protocol check). */
  readonly trace: string | null;
  /** Commands that replay it against the same adapter command. */
  readonly replay: readonly string[];
}

/** One test case: a trace, a path, a protocol rule, or one geometry of a generated check. */
export interface CaseResult {
  /** Stable across runs and seeds ("scenarios/reject-not-current.jsonl", "path 12 on 65 x 4096 B"). */
  readonly name: string;
  readonly geometry: string | null;
  readonly runs: number;
  readonly steps: number;
  readonly seconds: number;
  readonly failure: CheckFailure | null;
  /** Why it did not run (cut by the budget, say); null when it ran. */
  readonly skipped: string | null;
}

export interface CheckResult {
  /** `<level>/<kind>`. */
  readonly id: string;
  readonly level: Level;
  /** The console's name ("fast-check sequences with kills"). */
  readonly name: string;
  readonly status: 'passed' | 'failed' | 'not run';
  readonly runs: number;
  readonly steps: number;
  /** Crashes the implementation recovered from and was judged on. */
  readonly crashPoints: number;
  readonly seconds: number;
  /** The share of the budget it was given (null: it runs whole). */
  readonly allotmentSeconds: number | null;
  /** It stopped at its deadline before running everything it had. */
  readonly cutByBudget: boolean;
  readonly geometries: readonly string[];
  readonly cases: readonly CaseResult[];
  /** The first failure. */
  readonly failure: CheckFailure | null;
}

export interface LevelResult {
  readonly level: Level;
  readonly status: 'passed' | 'failed' | 'skipped' | 'not run';
  readonly reason: string | null;
  readonly checks: readonly CheckResult[];
  readonly seconds: number;
}

export interface MessageWarningsReport {
  readonly count: number;
  readonly examples: readonly {
    readonly step: string;
    readonly message: string;
    readonly missing: readonly string[];
  }[];
}

export interface ConformanceReport {
  readonly cowmapVersion: string;
  readonly protocol: 1;
  /** ISO 8601. */
  readonly startedAt: string;
  readonly implementation: {
    readonly name: string;
    readonly version: string | null;
    readonly command: readonly string[];
  };
  readonly command: readonly string[];
  readonly features: readonly Feature[];
  readonly seed: number;
  readonly geometries: readonly string[];
  readonly budget: { readonly seconds: number; readonly rule: string; readonly cutChecks: readonly string[] };
  readonly strictMessages: boolean;
  readonly levels: readonly LevelResult[];
  readonly warnings: { readonly messages: MessageWarningsReport };
  readonly coverage: TransitionCoverage;
  readonly interrupted: boolean;
  /** The run could not judge: the adapter broke the protocol, or cowmap met an error. */
  readonly error: { readonly code: string; readonly message: string } | null;
  readonly conforms: boolean;
  readonly seconds: number;
  readonly steps: number;
  readonly crashPoints: number;
}
