// What both sides of the conform speed bench share (conformSpeed.ts): the run's
// settings, the shape of the sequences, the timeout of a request, and what a slice
// of either side reports.

import { loadAverages } from './system.ts';

export interface ConformSpeedConfig {
  readonly root: string;
  readonly repoRoot: string;
  readonly seed: number;
  /** Pairs of slices, driver and ours, in alternating order. */
  readonly repetitions: number;
  /** How long each contender runs in each slice. */
  readonly secondsPerRun: number;
  readonly regions: number;
  readonly regionSize: number;
  /** Whole `conform` runs against the Python example, and the time budget of each. */
  readonly conformRepetitions: number;
  readonly conformBudgetSeconds: number;
}

/** What one slice of either side, or one whole conform run, did. */
export interface RunFigures {
  readonly steps: number;
  readonly seconds: number;
  /** The 1-minute load average when it started. */
  readonly loadAverage: number;
}

/** No request waits longer than this for its answer: the bench must end. */
export const requestTimeoutMs = 30_000;
/** Contents per region the driver writes, as the fuzz's labels per region. */
export const contentsPerRegion = 3;
/** The fast-check sequences' longest sequence (fuzzDefaults.commandsMax). */
export const commandsMax = 50;

/** The 1-minute load average now. */
export function loadAverageNow(): number {
  return loadAverages()[0]!;
}
