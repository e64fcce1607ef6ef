// Contenders take turns: repetition r runs them in the order rotated by r, so that
// none of them always goes first (after a cache drop, on a disk whose flush latency
// drifts) and a change of load on a shared machine shifts every side of a repetition
// alike.

import assert from 'node:assert/strict';

/** `items` rotated left by `turn`: turn 0 is the order given, turn 1 starts at the second item. */
export function rotated<T>(items: readonly T[], turn: number): T[] {
  assert(Number.isInteger(turn) && turn >= 0, `rotated: turn ${turn} is not a whole number >= 0`);
  return items.map((_, index) => items[(index + turn) % items.length]!);
}

/** Runs the bodies one after the other, in the order rotated by `turn`. */
export async function runInTurn(bodies: readonly (() => Promise<void>)[], turn: number): Promise<void> {
  for (const body of rotated(bodies, turn)) await body();
}
