import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cycleNumberOf, cycleWindow, describeCycleWindows, parseCompletedCycle } from './nbdCycleLines.ts';

test('parseCompletedCycle reads the completed line of today and tolerates extra fields', () => {
  const today = parseCompletedCycle('cycle 7: completed, sent 12 region(s), 3145728 bytes in 0.004 s', 10);
  assert.deepEqual(today, { cycle: 7, regions: 12, bytes: 3145728, seconds: 0.004, receivedAtSeconds: 10 });
  const resumed = parseCompletedCycle('cycle 3: resumed and completed, sent 1 region(s), 65536 bytes in 2 s', 1);
  assert.equal(resumed?.regions, 1);
  assert.equal(resumed?.seconds, 2);
  const extra = parseCompletedCycle(
    'cycle 9: completed (lag 0.3 s), sent 4 region(s), 262144 bytes in 0.125 s, 2 syncs',
    5,
  );
  assert.deepEqual(extra, { cycle: 9, regions: 4, bytes: 262144, seconds: 0.125, receivedAtSeconds: 5 });
  assert.equal(parseCompletedCycle('cycle 7: swap, 12 region(s) to send', 1), null);
  assert.equal(parseCompletedCycle('serving nbd://127.0.0.1:10809', 1), null);
  assert.equal(cycleNumberOf('cycle 7: swap, 12 region(s) to send'), 7);
  assert.equal(cycleNumberOf('stopped (SIGTERM) after 2 cycle(s)'), null);
});

test('cycleWindow counts the cycles of the window and the longest time since the latest swap sent', () => {
  const at = (cycle: number, receivedAtSeconds: number, seconds: number) => ({
    cycle,
    regions: 1,
    bytes: 1,
    seconds,
    receivedAtSeconds,
  });
  // Swaps at 9.5, 10.5 and 12.0; the window is [10, 13].
  const all = [at(1, 9.7, 0.2), at(2, 11.5, 1), at(3, 12.5, 0.5), at(4, 14, 0.5)];
  const window = cycleWindow(all, 10, 13);
  assert.equal(window.completed, 2);
  assert.deepEqual(window.lengthsSeconds, [1, 0.5]);
  // Just before cycle 2 completed (11.5), the secondary held P@9.5: 2 s behind.
  assert.equal(window.lagSeconds, 2);
  const none = cycleWindow([], 10, 13);
  assert.deepEqual(none, { completed: 0, lengthsSeconds: [], lagSeconds: 3 });
  assert.match(describeCycleWindows([window, none]), /^2 cycle\(s\) completed, length median 0\.750 s, max 1\.000 s; /);
  assert.match(describeCycleWindows([none]), /^no cycle completed; replica lag median 3\.00 s, max 3\.00 s$/);
  assert.equal(describeCycleWindows([]), 'no job ran');
});
