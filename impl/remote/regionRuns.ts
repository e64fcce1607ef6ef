// A batch's regions as NBD WRITEs: adjacent regions merged into one request, up to
// the server's maximum payload, so that a run of dirty regions costs one request
// (and one reply) instead of one each.

import { assert } from '../assert.ts';
import type { RemoteWrite } from './remoteLink.ts';

/** Runs of adjacent regions [first, first + count), ascending, each at most `payloadMax` bytes (one region at least). */
export function regionRuns(
  regions: Iterable<number>,
  regionSize: number,
  payloadMax: number,
): { first: number; count: number }[] {
  const sorted = [...new Set(regions)].sort((a, b) => a - b);
  const regionsPerRunMax = Math.max(1, Math.floor(payloadMax / regionSize));
  const runs: { first: number; count: number }[] = [];
  for (const region of sorted) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.first + last.count === region && last.count < regionsPerRunMax) last.count++;
    else runs.push({ first: region, count: 1 });
  }
  return runs;
}

/** The WRITEs of a batch: each run's regions' bytes, concatenated, at the run's offset in the export. */
export function runWrites(
  contents: ReadonlyMap<number, Uint8Array>,
  regionSize: number,
  payloadMax: number,
): RemoteWrite[] {
  return regionRuns(contents.keys(), regionSize, payloadMax).map(({ first, count }) => {
    // Not zeroed first: every byte is one of the run's regions (a zero-fill of a batch's worth of
    // fresh memory was most of the cost of building the writes).
    const bytes = Buffer.allocUnsafe(count * regionSize);
    for (let i = 0; i < count; i++) {
      const content = contents.get(first + i)!;
      assert(content.length === regionSize, `region ${first + i}: ${content.length} bytes, not ${regionSize}`);
      bytes.set(content, i * regionSize);
    }
    return { offset: first * regionSize, bytes };
  });
}
