// The buffer budget (bufferBudget.ts): grants within the cap, FIFO waiters that
// nobody overtakes, cancel, and the bounds it asserts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BufferBudget } from './bufferBudget.ts';

describe('BufferBudget', () => {
  test('grants within the cap, queues beyond it, and grants in FIFO order as bytes are released', () => {
    const budget = new BufferBudget(100, 4);
    const granted: string[] = [];
    assert.equal(budget.reserve({ bytes: 60, granted: () => granted.push('a') }), true);
    assert.equal(budget.reserve({ bytes: 50, granted: () => granted.push('big') }), false);
    assert.equal(budget.reserve({ bytes: 45, granted: () => granted.push('second') }), false);
    assert.equal(budget.usedBytes, 60);
    budget.release(10);
    assert.deepEqual(granted, ['big'], 'the head waiter fits once 10 bytes are back');
    assert.equal(budget.usedBytes, 100);
    budget.release(60);
    assert.deepEqual(granted, ['big', 'second']);
    assert.equal(budget.usedBytes, 85);
    assert.equal(budget.waiting, 0);
  });

  test('a reservation that fits passes the waiters, for a cap of bytes per head waiter: a large one is not starved', () => {
    const budget = new BufferBudget(100, 4);
    const granted: string[] = [];
    budget.reserve({ bytes: 60, granted: () => granted.push('stalled') }); // a client that never sends its payload
    assert.equal(budget.reserve({ bytes: 50, granted: () => granted.push('big') }), false);
    // Small requests of other clients pass the stalled head, each released after it runs...
    for (let index = 0; index < 10; index++) {
      assert.equal(budget.reserve({ bytes: 10, granted: () => {} }), true, `small ${index} passes`);
      budget.release(10);
    }
    // ... until a cap's worth (100 bytes) has passed the head waiter: then they queue behind it.
    assert.equal(budget.reserve({ bytes: 10, granted: () => granted.push('small') }), false);
    budget.release(60);
    assert.deepEqual(granted, ['big', 'small']);
    // A new head waiter: bytes may pass it again, as far as they fit.
    assert.equal(budget.reserve({ bytes: 50, granted: () => granted.push('next') }), false);
    assert.equal(budget.reserve({ bytes: 30, granted: () => {} }), true, '30 fits beside the 60 used');
    assert.equal(budget.reserve({ bytes: 20, granted: () => granted.push('full') }), false, '20 does not: 90 used');
    budget.release(50);
    assert.deepEqual(granted, ['big', 'small', 'next'], 'the 20 waits behind the head waiter it could not pass');
  });

  test('cancel forgets a waiter and lets the next one in', () => {
    const budget = new BufferBudget(10, 2);
    budget.reserve({ bytes: 10, granted: () => {} });
    const granted: string[] = [];
    const big = { bytes: 10, granted: () => granted.push('big') };
    budget.reserve(big);
    budget.reserve({ bytes: 1, granted: () => granted.push('small') });
    budget.release(5);
    assert.deepEqual(granted, []);
    budget.cancel(big);
    assert.deepEqual(granted, ['small']);
    budget.cancel(big); // not queued any more: no effect
    assert.equal(budget.usedBytes, 6);
  });

  test('its bounds are assertions: a reservation over the cap, more waiters than allowed, releasing more than used', () => {
    const budget = new BufferBudget(10, 1);
    assert.throws(() => budget.reserve({ bytes: 11, granted: () => {} }), /over the cap/);
    budget.reserve({ bytes: 10, granted: () => {} });
    budget.reserve({ bytes: 1, granted: () => {} });
    assert.throws(() => budget.reserve({ bytes: 1, granted: () => {} }), /more than 1 budget waiters/);
    assert.throws(() => budget.release(11), /release of 11 bytes/);
    assert.throws(() => new BufferBudget(0, 1), /a buffer cap of 0/);
  });
});
