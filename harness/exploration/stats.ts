// What a crash exploration counts as it goes: the prefixes and operations run,
// the crash points, runs and distinct states per mode, the crashes inside create,
// recovery and scrub, rot, and the oracle's own counts. The report prints them
// (report.ts); `cowmap crashes` sums the states per kind over its explorations.

import type { OracleStats } from '../oracle/oracle.ts';
import type { ExplorationMode } from './choices.ts';

export interface ModeStats {
  /** Crash points tried in this mode. */
  points: number;
  /** Of those, crash points with too many choice bits, where seeded subsets were sampled. */
  sampledPoints: number;
  /** Crash runs (one per subset tried). */
  runs: number;
  /** Distinct crash states judged (runs whose post-crash files were not judged before at that point). */
  states: number;
}

export type InsideKind = 'create' | 'recovery' | 'scrub';

export interface InsideStats {
  /** Crash points: a durable call of create, of a recovery (or of the recovery after that one crashed), of scrub. */
  points: number;
  runs: number;
  /** Distinct crash states judged. */
  states: number;
}

export interface RotStats {
  /** Flips tried: a byte of a synced file at an offset aimed at one structure, at one prefix state. */
  runs: number;
  /** Of those, the volume reported E_CORRUPT (at open, an operation, state() or a read of S). */
  detected: number;
  /** The others: the volume ran its cycles to the end with S equal to P. */
  healed: number;
}

export interface ExplorationStats {
  /** Operation sequences of length 1..L covered (every one, rejected operations included). */
  sequences: number;
  /** Distinct prefix states reached (root included), after deduplication. */
  prefixes: number;
  /** Distinct prefix states expanded (depth < L). */
  expanded: number;
  /** (prefix, operation) pairs run. */
  opRuns: number;
  /** Of those, rejected operations (no I/O, nothing to crash). */
  rejected: number;
  /** Accepted (prefix, operation) pairs, and between-operation crash sites. */
  crashSites: number;
  /** Crash points: every k in 0..io of every accepted pair, plus one between operations per prefix. */
  crashPoints: number;
  /** Crash points where every subset was tried (in power and torn, per mode). */
  exhaustedPoints: number;
  /** Crash points where subsets were sampled. */
  sampledPoints: number;
  /** Crash runs, duplicates included. */
  runs: number;
  /** Distinct crash states recovered and judged. */
  crashStates: number;
  /** Runs whose post-crash files equal a state already judged at the same crash site. */
  duplicates: number;
  /** Process crash states whose recovery inherited unsynced writes, then lost power after finishing the cycle. */
  powerLossesAfterRecovery: number;
  /** Largest number of choice bits seen at a crash point (power, torn). */
  choiceBitsMax: { power: number; torn: number };
  byMode: Record<ExplorationMode, ModeStats>;
  /** Crashes inside create, inside recovery (a second crash inside it included), inside scrub --repair. */
  inside: Record<InsideKind, InsideStats>;
  rot: RotStats;
  /** What was skipped and why (a phase the implementation cannot run yet). */
  notes: string[];
  oracle: OracleStats;
  seconds: number;
}

function emptyModeStats(): ModeStats {
  return { points: 0, sampledPoints: 0, runs: 0, states: 0 };
}

function emptyInsideStats(): InsideStats {
  return { points: 0, runs: 0, states: 0 };
}

export function emptyStats(): ExplorationStats {
  return {
    sequences: 0,
    prefixes: 0,
    expanded: 0,
    opRuns: 0,
    rejected: 0,
    crashSites: 0,
    crashPoints: 0,
    exhaustedPoints: 0,
    sampledPoints: 0,
    runs: 0,
    crashStates: 0,
    duplicates: 0,
    powerLossesAfterRecovery: 0,
    choiceBitsMax: { power: 0, torn: 0 },
    byMode: { process: emptyModeStats(), power: emptyModeStats(), torn: emptyModeStats() },
    inside: { create: emptyInsideStats(), recovery: emptyInsideStats(), scrub: emptyInsideStats() },
    rot: { runs: 0, detected: 0, healed: 0 },
    notes: [],
    oracle: { steps: 0, invariantChecks: 0, crashStates: 0 },
    seconds: 0,
  };
}
