import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cycleExpectedIo, ioMismatches } from './cycleExpectedIo.ts';

// The counts the cycle bench checked before they moved here: 10 regions of 64 KiB
// sent in one batch, 9216 B of metadata (4096 B of it the digest table), 5 fdatasyncs.
test('cycleExpectedIo: ten 64 KiB regions in one batch', () => {
  const sent = [3, 90, 150, 301, 402, 555, 700, 801, 902, 1000];
  const expected = cycleExpectedIo(sent, 65536);
  assert.equal(expected.batches, 1);
  assert.equal(expected.digestBytes, 4096);
  assert.equal(expected.metadataBytes, 9216);
  assert.equal(expected.counts.bytesWritten, 10 * 65536 + expected.metadataBytes);
  assert.equal(expected.counts.syncCalls, 5);
  assert.deepEqual(ioMismatches(expected.counts, expected), []);
  assert.deepEqual(ioMismatches({ ...expected.counts, syncCalls: 4 }, expected), ['syncCalls 4, expected 5']);
});
