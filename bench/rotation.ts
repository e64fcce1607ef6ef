// Contenders take turns: repetition r runs them in the order rotated by r, so that
// none of them always goes first (after a cache drop, on a disk whose flush latency
// drifts) and a change of load on a shared machine shifts every side of a repetition
// alike.

/** `items` rotated left by `turn`: turn 0 is the order given, turn 1 starts at the second item. */
export function rotated<T>(items: readonly T[], turn: number): T[] {
  if (!Number.isInteger(turn) || turn < 0) throw new RangeError(`rotated: turn ${turn}`);
  return items.map((_, index) => items[(index + turn) % items.length]!);
}

/** Runs the bodies one after the other, in the order rotated by `turn`. */
export async function runInTurn(bodies: readonly (() => Promise<void>)[], turn: number): Promise<void> {
  for (const body of rotated(bodies, turn)) await body();
}
