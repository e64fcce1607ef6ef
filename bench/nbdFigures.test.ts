import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cycleFigures, fioFigures, nbdcopyFigure, type RunsByServer } from './nbdFigures.ts';
import { emptyServerRuns, jobNames } from './nbdTurns.ts';

/** Runs of one server: every job at `iops` (and `iops` MiB/s), the copies in `copySeconds`. */
function runsAt(iops: readonly number[], copySeconds: readonly number[]) {
  const runs = emptyServerRuns();
  for (const name of jobNames)
    for (const value of iops) runs.fio[name].push({ iops: value, bytesPerSecond: value << 20, ioBytes: 1, error: 0 });
  runs.nbdcopySeconds.push(...copySeconds);
  runs.load.push(...iops.map(() => 1));
  return runs;
}

test('the ratios are ours over nbdkit per repetition, with qemu-nbd beside or "–" without it', () => {
  const noCycles = { randwrite: [], randwriteFsync: [], steady: [] };
  const runs: RunsByServer = { cowmap: runsAt([100, 300], [2, 2]), nbdkit: runsAt([200, 400], [1, 4]) };
  const figures = fioFigures(runs, noCycles);
  const steady = figures.find((figure) => figure.key === 'nbdWriteSteadyVsNbdkit')!;
  // 100/200 and 300/400: the median of 0.5 and 0.75.
  assert.equal(steady.summary.median, 0.625);
  assert.deepEqual(steady.target, { text: '>= 0.8', met: false });
  assert.match(steady.detail!, /qemu-nbd –/);
  const withQemu = fioFigures({ ...runs, qemuNbd: runsAt([100, 200], []) }, noCycles);
  assert.match(withQemu[0]!.detail!, /qemu-nbd 150 IOPS \(0\.50x nbdkit\)/);
  assert.equal(nbdcopyFigure(runs, 64 << 20)[0]!.summary.median, 1.25);
  assert.deepEqual(nbdcopyFigure({ cowmap: runsAt([1], []), nbdkit: runsAt([1], []) }, 64 << 20), []);
});

test('cycleFigures: the lag per job always, the lengths only when a cycle completed', () => {
  const window = (lengthsSeconds: number[], lagSeconds: number) => ({
    completed: lengthsSeconds.length,
    lengthsSeconds,
    lagSeconds,
  });
  const none = cycleFigures({ randwrite: [window([], 1.5)], randwriteFsync: [window([], 2.5)], steady: [] });
  assert.deepEqual(
    none.map((figure) => figure.key),
    ['nbdCycleLagSeconds'],
  );
  assert.equal(none[0]!.summary.median, 2);
  const some = cycleFigures({ randwrite: [window([0.2, 0.4], 1)], randwriteFsync: [window([0.9], 2)], steady: [] });
  assert.equal(some[1]!.key, 'nbdCycleSeconds');
  assert.equal(some[1]!.summary.median, 0.4);
  assert.equal(some[1]!.summary.max, 0.9);
});
