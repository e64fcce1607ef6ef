// The options of a fuzz run (cowmap fuzz, verify, conform and the benchmarks
// give them), their defaults, and what a run reports.

import { join } from 'node:path';
import type { ScenarioStep } from '../scenario.ts';
import type { Difference } from '../oracle/oracle.ts';
import type { SystemUnderTest } from '../sut/systemUnderTest.ts';
import type { FaultMode } from '../types.ts';
import type { FuzzData, HistoryMin } from './generation.ts';

export type { FuzzData, HistoryMin } from './generation.ts';

export const fuzzDefaults = {
  regions: 4,
  labels: 3,
  commandsMax: 50,
  regionSize: 512,
  ioMax: 12,
  numRuns: 100,
  data: 'bytes' as FuzzData,
  failuresDir: join('traces', 'failures'),
  /** Shrinking stops after this long (the counterexample found so far is kept). */
  shrinkBudgetMs: 120_000,
} as const;

export const runsUnbounded = 1_000_000_000;

export interface FuzzProgress {
  readonly phase: 'search' | 'shrink';
  readonly runs: number;
  readonly shrinks: number;
  readonly steps: number;
  readonly seconds: number;
}

export interface FuzzOptions {
  readonly seed: number;
  /** A counterexample to replay: the path a failing run printed (`<fast-check path>@<replayPath>`). */
  readonly path?: string;
  /** Runs to try (default 100, or unbounded with a time budget). */
  readonly numRuns?: number;
  /** No new run starts after this long; a failure found in time is still shrunk. */
  readonly timeBudgetMs?: number;
  readonly regions: number;
  /** With data 'labels': labels per region, writes carry `A1`..`A<labels>` and so on (default 3). */
  readonly labels?: number;
  /** Commands a sequence has at most (default 50; raised to reach historyMin). */
  readonly commandsMax?: number;
  /**
   * What generated writes carry (default 'bytes'): full-region seeded random
   * content and near-copies of earlier content differing only in the last byte,
   * one middle sector or the last sector, and now and then zeros; or 'labels',
   * short labels padded with zeros.
   */
  readonly data?: FuzzData;
  /** Every generated sequence has at least this many operations and completed cycles (the search skips shorter ones; shrinking may go below). */
  readonly historyMin?: HistoryMin;
  /** Default 512. Above one sector, labels reach into the second sector, so that a torn write can mix them. */
  readonly regionSize?: number;
  /** Crashes inside an operation come after its k-th I/O call, k in 0..ioMax (default 12). */
  readonly ioMax?: number;
  readonly makeSut: () => SystemUnderTest;
  /** The crashes inside an operation to generate (default: what the implementation's features offer; [] for none). */
  readonly crashModes?: readonly FaultMode[];
  /** Whether to generate crashes between operations (default true). */
  readonly crashBetween?: boolean;
  /** Where a failing sequence is saved (default traces/failures). */
  readonly failuresDir?: string;
  /** Extra arguments for the printed `cowmap fuzz` replay command (e.g. `--mutant NAME`). */
  readonly replayArgs?: readonly string[];
  /**
   * The commands a saved failure prints, given its trace file and fast-check path
   * (default: `cowmap replay FILE` and `cowmap fuzz ...`, which run the reference
   * implementation; conform gives commands that run the user's adapter).
   */
  readonly replayCommands?: (tracePath: string, path: string) => readonly string[];
  readonly shrinkBudgetMs?: number;
  readonly onProgress?: (progress: FuzzProgress) => void;
}

export interface FuzzFailure {
  /** The oracle's message (or the error's) for the shortest failing sequence. */
  readonly message: string;
  readonly differences: readonly Difference[];
  /** The path to give `cowmap fuzz --path` with the same seed. */
  readonly path: string;
  /** The shortest failing sequence, as scenario steps (up to the failing one). */
  readonly steps: readonly ScenarioStep[];
  /** The failing step (0-based index into `steps`). */
  readonly stepIndex: number;
  readonly tracePath: string;
  readonly trace: string;
  /** The saved trace, replayed on a fresh implementation, fails again. */
  readonly reproduced: boolean;
  /** The shrink budget ran out: a shorter failing sequence may exist (`--path` resumes from this one). */
  readonly shrinkCutShort: boolean;
  /** The commands to replay the failure. */
  readonly replay: readonly string[];
}

export interface FuzzResult {
  readonly seed: number;
  /** Sequences run before the first failure (or all of them). */
  readonly runs: number;
  /** Sequences run while shrinking. */
  readonly shrinks: number;
  readonly steps: number;
  readonly invariantChecks: number;
  readonly crashStates: number;
  /** Transition ids taken (statechart ids plus the oracle's `<phase>:crash`). */
  readonly covered: ReadonlySet<string>;
  /** Transition ids with the number of runs that took each. */
  readonly hits: ReadonlyMap<string, number>;
  /** Statechart transitions taken, of all of them. */
  readonly transitions: { readonly covered: number; readonly total: number; readonly missing: readonly string[] };
  readonly seconds: number;
  /** The time budget ended the search before numRuns. */
  readonly interrupted: boolean;
  /** The fewest operations and the fewest completed cycles of a passing searched sequence (null: none passed). */
  readonly shortestRun: { readonly operations: number; readonly cycles: number } | null;
  readonly failure: FuzzFailure | null;
}
