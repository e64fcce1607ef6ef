// A batch's regions as NBD WRITEs (impl/remote/regionRuns.ts): adjacent regions merged up
// to the payload limit, duplicates once, the bytes in place.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { regionRuns, runWrites } from './regionRuns.ts';

describe('regionRuns', () => {
  it('merges adjacent regions, in ascending order, each region once', () => {
    assert.deepEqual(regionRuns([7, 1, 2, 3, 9, 2, 8], 4096, 1 << 20), [
      { first: 1, count: 3 },
      { first: 7, count: 3 },
    ]);
  });

  it('splits a run at the payload limit, and keeps one region per request when a region is larger', () => {
    assert.deepEqual(regionRuns([0, 1, 2, 3, 4], 4096, 8192), [
      { first: 0, count: 2 },
      { first: 2, count: 2 },
      { first: 4, count: 1 },
    ]);
    assert.deepEqual(regionRuns([0, 1], 65536, 4096), [
      { first: 0, count: 1 },
      { first: 1, count: 1 },
    ]);
  });

  it("writes each run's regions' bytes at the run's offset", () => {
    const contents = new Map([3, 4, 6].map((region) => [region, new Uint8Array(512).fill(region)] as const));
    const writes = runWrites(contents, 512, 1 << 20);
    assert.deepEqual(
      writes.map((write) => [write.offset, write.bytes.length, write.bytes[0], write.bytes[511], write.bytes[512]]),
      [
        [1536, 1024, 3, 3, 4],
        [3072, 512, 6, 6, undefined],
      ],
    );
  });
});
