import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { situations } from '../failpointSweep.ts';
import { sweepOrder } from './sweepCheck.ts';

describe('the sweep order', () => {
  it('takes every situation once, and any four in a row crash inside at least two kinds of operation, the first four inside all four', () => {
    const order = sweepOrder();
    assert.deepEqual([...order].sort(), situations.map((situation) => situation.name).sort());
    const kindOf = new Map(
      situations.map((situation) => [
        situation.name,
        situation.operation({ region: 0, other: 1 }, (region) => ({ type: 'write', region, data: new Uint8Array(0) }))
          .type,
      ]),
    );
    assert.equal(
      new Set(order.slice(0, 4).map((name) => kindOf.get(name))).size,
      4,
      'the first four: a write, a startCycle, a transfer, a completeCycle',
    );
    for (let start = 0; start < order.length; start++) {
      const window = [0, 1, 2, 3].map((at) => order[(start + at) % order.length]!);
      assert.ok(new Set(window.map((name) => kindOf.get(name))).size >= 2, `situations ${start}..${start + 3}`);
    }
    // The level consistent sweeps the transfers and completions only, alternating.
    const consistent = sweepOrder(['transfer', 'completeCycle']);
    assert.deepEqual(
      consistent.map((name) => kindOf.get(name)),
      ['transfer', 'completeCycle', 'transfer', 'transfer'],
    );
  });
});
