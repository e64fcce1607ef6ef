import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OursTimes } from './remoteCycle.ts';
import { type ConfigRuns, coldFigure, remoteFigure } from './remoteFigures.ts';

/** A repetition of ours: `totalSeconds` in all, of which the link's connect took `connectSeconds`. */
function ours(totalSeconds: number, connectSeconds: number): OursTimes {
  return {
    link: { calls: { connect: { count: 1, seconds: connectSeconds } }, writes: 164, writeBytes: 164 << 16 },
    openSeconds: 0.01,
    cycleSeconds: totalSeconds - 0.02,
    closeSeconds: 0.01,
    totalSeconds,
    batches: 1,
    regionsSent: 164,
  };
}

function runsOf(transport: 'unix' | 'tcp', delayMs: number): ConfigRuns {
  return {
    transport,
    delayMs,
    ours: [ours(0.5, 0.3), ours(1.5, 1), ours(0.4, 0.2)],
    oursWarm: [ours(0.2, 0), ours(0.3, 0), ours(0.2, 0)],
    nbdcopySeconds: [0.25, 0.5, 0.4],
    load: [1, 2, 3],
  };
}

const sizes = { dirtyBytes: 164 << 16, volumeBytes: 1 << 30 };
const target = { text: '<= 1.25', atMost: 1.25 };

test('the keys: the headline is the Unix socket with the delay; NoDelay, Tcp and Cold are suffixes and a prefix', () => {
  const keys = [
    remoteFigure(runsOf('unix', 5), sizes, target).key,
    remoteFigure(runsOf('unix', 0), sizes, null).key,
    remoteFigure(runsOf('tcp', 5), sizes, target).key,
    coldFigure(runsOf('tcp', 0), sizes).key,
  ];
  assert.deepEqual(keys, [
    'remoteCycleVsNbdcopy',
    'remoteCycleVsNbdcopyNoDelay',
    'remoteCycleVsNbdcopyTcp',
    'remoteColdCycleVsNbdcopyNoDelayTcp',
  ]);
});

test('the ratio is ours over nbdcopy per repetition; the cold figure says where its cycle went', () => {
  const cold = coldFigure(runsOf('unix', 5), sizes);
  // 0.5/0.25, 1.5/0.5, 0.4/0.4: the median of 2, 3 and 1.
  assert.equal(cold.summary.median, 2);
  assert.equal(cold.target, undefined);
  assert.match(cold.detail!, /connect .* took 300\.0 ms/);
  assert.match(cold.detail!, /load average 2\.00 \(1\.00\.\.3\.00\)/);
  const figure = remoteFigure(runsOf('unix', 5), sizes, target);
  // 0.18/0.25, 0.28/0.5, 0.18/0.4 (the cycle alone, its link up).
  assert.ok(Math.abs(figure.summary.median - 0.56) < 1e-9);
  assert.deepEqual(figure.target, { text: '<= 1.25', met: true });
  assert.equal(figure.why, undefined);
  assert.equal(remoteFigure(runsOf('unix', 0), sizes, null).target, undefined);
});
