// ByteQueue against a plain buffer: random chunkings, peeks, takes and skips give
// the same bytes (the seed is printed).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteQueue } from './byteQueue.ts';

function random(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % below) >>> 0;
  };
}

test('ByteQueue hands out the bytes pushed, in order, whatever the chunking', (t) => {
  const seed = Number(process.env.COWMAP_SEED ?? Date.now() % 2 ** 31);
  t.diagnostic(`seed ${seed} (COWMAP_SEED=${seed} repeats it)`);
  const next = random(seed);
  const queue = new ByteQueue();
  let model = Buffer.alloc(0);
  let counter = 0;
  for (let step = 0; step < 5000; step++) {
    const action = next(4);
    if (action === 0 || model.length === 0) {
      const chunk = Buffer.alloc(next(40));
      for (let index = 0; index < chunk.length; index++) chunk[index] = counter++ & 0xff;
      queue.push(chunk);
      model = Buffer.concat([model, chunk]);
    } else {
      const count = next(model.length + 1);
      if (action === 1) assert.ok(queue.peek(count).equals(model.subarray(0, count)), `peek ${count}, seed ${seed}`);
      if (action === 2) {
        const taken = queue.take(count);
        assert.ok(taken.equals(model.subarray(0, count)), `take ${count}, seed ${seed}`);
        model = model.subarray(count);
      }
      if (action === 3) {
        assert.equal(queue.skip(count), count);
        model = model.subarray(count);
      }
    }
    assert.equal(queue.length, model.length, `length, seed ${seed}`);
  }
  assert.throws(() => queue.take(queue.length + 1), /take of/);
  assert.throws(() => queue.peek(queue.length + 1), /peek of/);
});

test('a taken payload is a copy: the chunks it came in are not retained by it', () => {
  const queue = new ByteQueue();
  const chunk = Buffer.from([1, 2, 3, 4]);
  queue.push(chunk);
  const taken = queue.take(2);
  chunk[0] = 9;
  assert.deepEqual([...taken], [1, 2]);
});
