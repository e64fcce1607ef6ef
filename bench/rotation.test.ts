import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rotated, runInTurn } from './rotation.ts';

test('rotated: turn r starts at item r, wrapping, as the contenders took turns before', () => {
  const contenders = ['ours', 'rsync', 'copy'];
  assert.deepEqual(rotated(contenders, 0), ['ours', 'rsync', 'copy']);
  assert.deepEqual(rotated(contenders, 1), ['rsync', 'copy', 'ours']);
  assert.deepEqual(rotated(contenders, 2), ['copy', 'ours', 'rsync']);
  assert.deepEqual(rotated(contenders, 3), contenders);
  assert.deepEqual(contenders, ['ours', 'rsync', 'copy'], 'the input is left as it was');
});

test('rotated: a negative or fractional turn is a broken invariant (an AssertionError)', () => {
  assert.throws(() => rotated([1, 2], -1), assert.AssertionError);
  assert.throws(() => rotated([1, 2], 0.5), assert.AssertionError);
});

test('runInTurn: two sides alternate which goes first', async () => {
  const order: string[] = [];
  const driver = async () => {
    order.push('driver');
  };
  const checked = async () => {
    order.push('checked');
  };
  for (let repetition = 0; repetition < 3; repetition++) await runInTurn([driver, checked], repetition);
  assert.deepEqual(order, ['driver', 'checked', 'checked', 'driver', 'driver', 'checked']);
});
