// NbdClient under replies in random order: batches of reads and writes, split to the
// fake server's 8 KiB maximum payload, whose replies the server releases in a random
// order, checked against a model of the image (the seed is printed).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testBytes, withFake } from './clientTestKit.ts';

const hold = () => 'hold' as const;

test('random batches of split reads and writes with replies released in random order match a model of the image', async () => {
  const seed = Date.now() % 1_000_000;
  process.stdout.write(`# random reply order seed ${seed}\n`);
  let state = seed || 1;
  const random = (below: number): number => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % below;
  };
  const exportSize = 256 * 1024;
  const model = Buffer.alloc(exportSize);
  const inFlightMax = 1 + random(8);
  await withFake(
    { exportSize, blockSize: [512, 4096, 8192], onRequest: hold },
    async (server, client) => {
      let running = true;
      const releaser = (async () => {
        while (running) {
          if (server.held.length > 0) server.release(random(server.held.length));
          else await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      try {
        for (let batch = 0; batch < 40; batch++) {
          // Writes to disjoint ranges (so that their order does not matter), then reads of any range.
          const starts = [...new Set(Array.from({ length: 1 + random(6) }, () => random(16)))];
          const writes = starts.map((slot) => {
            const offset = slot * 16384 + 512 * random(8);
            const data = testBytes(512 * (1 + random(20)), random(256));
            data.copy(model, offset);
            return client.write(offset, data);
          });
          await Promise.all([...writes, ...(random(4) === 0 ? [client.flush()] : [])]);
          const reads = Array.from({ length: 1 + random(4) }, () => {
            const offset = 512 * random(exportSize / 512);
            const length = Math.min(512 * random(40), exportSize - offset);
            return client.read(offset, length).then((data) => [offset, data] as const);
          });
          for (const [offset, data] of await Promise.all(reads)) {
            const expected = model.subarray(offset, offset + data.length);
            assert.equal(
              Buffer.compare(Buffer.from(data), expected),
              0,
              `seed ${seed} batch ${batch}: read at ${offset}`,
            );
          }
        }
        assert.equal(Buffer.compare(server.image, model), 0, `seed ${seed}: the image`);
      } finally {
        running = false;
        await releaser;
      }
    },
    { inFlightMax },
  );
});
