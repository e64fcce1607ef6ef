// The journal's index (receiverJournalIndex.ts) against a byte-per-byte model:
// seeded overlapping sets of data and zeros, every byte's source, the covered
// bytes, and the bound on extents (each set adds at most two). Prints its seed
// (COWMAP_RECEIVER_SEED replays).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JournalIndex, zeroSource } from './receiverJournalIndex.ts';

const seed = Number(process.env.COWMAP_RECEIVER_SEED ?? 20261130);

test(`the index gives each byte its newest source, seed ${seed}`, () => {
  let state = seed >>> 0 || 1;
  const next = (limit: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % limit;
  };
  const size = 3000;
  const index = new JournalIndex();
  // model[i]: the source of byte i (a journal offset, zeroSource, or null: not written).
  const model: (number | null)[] = new Array(size).fill(null);
  for (let set = 1; set <= 400; set++) {
    const offset = next(size);
    const length = Math.min(size - offset, 1 + next(300));
    const source = next(5) === 0 ? zeroSource : 100_000 * set;
    index.set(offset, length, source);
    for (let i = 0; i < length; i++) model[offset + i] = source === zeroSource ? zeroSource : source + i;
    assert.ok(index.count <= 2 * set + 1, `${index.count} extents after ${set} sets`);
    if (set % 50 !== 0) continue;
    const got: (number | null)[] = new Array(size).fill(null);
    let previousEnd = -1;
    for (const extent of index.all()) {
      assert.ok(extent.offset >= previousEnd && extent.length > 0, 'disjoint, sorted, not empty');
      previousEnd = extent.offset + extent.length;
      for (let i = 0; i < extent.length; i++)
        got[extent.offset + i] = extent.source === zeroSource ? zeroSource : extent.source + i;
    }
    assert.deepEqual(got, model, `after ${set} sets`);
    assert.equal(index.liveBytes, model.filter((source) => source !== null).length);
    const from = next(size);
    const span = next(size - from);
    let covered = 0;
    for (const extent of index.within(from, span)) {
      assert.ok(extent.offset >= from && extent.offset + extent.length <= from + span, 'clipped to the range');
      assert.equal(extent.source === zeroSource ? zeroSource : extent.source, model[extent.offset]);
      covered += extent.length;
    }
    assert.equal(covered, model.slice(from, from + span).filter((source) => source !== null).length);
  }
});
