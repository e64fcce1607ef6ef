import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mib, volumeSizeLabel } from './units.ts';

test('mib: one decimal unless told', () => {
  assert.equal(mib(1.5 * (1 << 20)), '1.5 MiB');
  assert.equal(mib(655360, 2), '0.63 MiB');
});

test('volumeSizeLabel: whole GiB from 1 GiB, else whole MiB', () => {
  assert.equal(volumeSizeLabel(1 << 30), '1 GiB');
  assert.equal(volumeSizeLabel(64 << 20), '64 MiB');
});
