import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptySeries, sum } from './series.ts';

test('emptySeries: one empty array a name, in the order named, none shared', () => {
  const series = emptySeries('oursSeconds', 'copySeconds');
  assert.deepEqual(Object.keys(series), ['oursSeconds', 'copySeconds']);
  series.oursSeconds.push(1);
  assert.deepEqual(series, { oursSeconds: [1], copySeconds: [] });
});

test('sum: the total, 0 for none', () => {
  assert.equal(sum([1, 2, 3.5]), 6.5);
  assert.equal(sum([]), 0);
});
