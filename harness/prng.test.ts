import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng, seedState } from './prng.ts';

function stream(seed: number, count: number): number[] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, () => prng.nextUint32());
}

test('the same seed gives the same stream', () => {
  assert.deepEqual(stream(42, 16), stream(42, 16));
});

test('different seeds give different streams, including seeds that differ above bit 31 or in sign', () => {
  assert.notDeepEqual(stream(1, 8), stream(2, 8));
  assert.notDeepEqual(stream(5, 8), stream(5 + 2 ** 32, 8));
  assert.notDeepEqual(stream(7, 8), stream(-7, 8));
  assert.notEqual(seedState(3), seedState(3 + 2 ** 40));
});

test('the stream is pinned (a change of algorithm would change every recorded seed)', () => {
  // Values of this implementation; if they change, seeds printed by older runs
  // no longer reproduce their failures.
  assert.deepEqual(stream(0, 3), [3805552362, 2715885597, 157910571]);
});

test('nextInt stays in range and hits every value of a small range', () => {
  const prng = new Prng(99);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const value = prng.nextInt(7);
    assert.ok(value >= 0 && value < 7, `value ${value}`);
    seen.add(value);
  }
  assert.equal(seen.size, 7);
  assert.throws(() => prng.nextInt(0), RangeError);
  assert.throws(() => new Prng(Number.NaN), RangeError);
});

test('nextBool is roughly fair', () => {
  const prng = new Prng(2024);
  let trueCount = 0;
  const drawCount = 10_000;
  for (let i = 0; i < drawCount; i++) if (prng.nextBool()) trueCount++;
  // Binomial(10000, 1/2): 4000..6000 is more than 20 standard deviations wide.
  assert.ok(trueCount > 4000 && trueCount < 6000, `trueCount ${trueCount}`);
});
