// The cycles `cowmap serve` reports on stdout (docs/nbd.md, "Cycles"), as the NBD
// bench reads them: one line per completed cycle, `cycle N: ... sent R region(s),
// B bytes in S s`, stamped with the time the bench received it. The server's line
// format is being reworked, so only that part is parsed and extra fields are
// tolerated anywhere around it.

import { summarize } from './stats.ts';

/** One completed cycle, as the server printed it and when the bench read the line. */
export interface CompletedCycle {
  readonly cycle: number;
  readonly regions: number;
  readonly bytes: number;
  /** The cycle's length as the server measured it (from its start, the swap, to its completion). */
  readonly seconds: number;
  /** When the bench read the line, in seconds of the bench's monotonic clock. */
  readonly receivedAtSeconds: number;
}

const completedPattern = /^cycle (\d+): .*\bsent (\d+) regions?(?:\(s\))?,? (\d+) bytes in (\d+(?:\.\d+)?) s\b/;

/** The completed cycle a line reports, or null for any other line. */
export function parseCompletedCycle(line: string, receivedAtSeconds: number): CompletedCycle | null {
  const match = completedPattern.exec(line.trim());
  if (match === null) return null;
  return {
    cycle: Number(match[1]),
    regions: Number(match[2]),
    bytes: Number(match[3]),
    seconds: Number(match[4]),
    receivedAtSeconds,
  };
}

/** The number of the cycle a line is about (`cycle N: ...`), or null. */
export function cycleNumberOf(line: string): number | null {
  const match = /^cycle (\d+):/.exec(line.trim());
  return match === null ? null : Number(match[1]);
}

/** What the cycles completed inside one job's window did. */
export interface CycleWindow {
  readonly completed: number;
  readonly lengthsSeconds: number[];
  /**
   * The most the secondary's point in time trailed the primary during the window:
   * the longest time, within the window, since the swap of the latest cycle
   * completed so far (a cycle's swap is its line's time less its length).
   */
  readonly lagSeconds: number;
}

/**
 * The cycles completed in [startSeconds, endSeconds] and the replica's lag over that
 * window. `all` is every cycle the server completed so far, in the order printed; a
 * cycle completed before the window sets the point in time at its start (without
 * one, the window's start does: what was there before the job is not the job's).
 */
export function cycleWindow(all: readonly CompletedCycle[], startSeconds: number, endSeconds: number): CycleWindow {
  const swapOf = (cycle: CompletedCycle) => cycle.receivedAtSeconds - cycle.seconds;
  const before = all.filter((cycle) => cycle.receivedAtSeconds < startSeconds).at(-1);
  const inside = all.filter(
    (cycle) => cycle.receivedAtSeconds >= startSeconds && cycle.receivedAtSeconds <= endSeconds,
  );
  let pointInTime = before === undefined ? startSeconds : swapOf(before);
  let lagSeconds = 0;
  for (const cycle of inside) {
    lagSeconds = Math.max(lagSeconds, cycle.receivedAtSeconds - pointInTime);
    pointInTime = Math.max(pointInTime, swapOf(cycle));
  }
  lagSeconds = Math.max(lagSeconds, endSeconds - pointInTime);
  return { completed: inside.length, lengthsSeconds: inside.map((cycle) => cycle.seconds), lagSeconds };
}

/** The cycles of several windows together: how many completed, median and max length, median and max lag. */
export function describeCycleWindows(windows: readonly CycleWindow[]): string {
  if (windows.length === 0) return 'no job ran';
  const lengths = windows.flatMap((window) => window.lengthsSeconds);
  const completed = windows.reduce((total, window) => total + window.completed, 0);
  const lags = summarize(windows.map((window) => window.lagSeconds));
  const lengthText =
    lengths.length === 0
      ? 'no cycle completed'
      : `${completed} cycle(s) completed, length median ${summarize(lengths).median.toFixed(3)} s, ` +
        `max ${Math.max(...lengths).toFixed(3)} s`;
  return `${lengthText}; replica lag median ${lags.median.toFixed(2)} s, max ${lags.max.toFixed(2)} s`;
}
