import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAllotmentMs, Deadline, historyReserveMs, share, shrinkBudgetMs, StepRate } from './budget.ts';

describe('the time-budget rule', () => {
  it('shares what is left by weight, and gives a later share what an earlier one left unused', () => {
    // rules 3, crash 3, failpoint 3, power 2 over 110 s.
    assert.equal(share(110_000, 3, 11), 30_000);
    // rules used 10 s of its 30: crash gets 3/8 of the 100 s left.
    assert.equal(share(100_000, 3, 8), 37_500);
    assert.equal(share(0, 3, 7), 0);
    assert.equal(share(-5, 3, 7), 0);
    assert.equal(share(1000, 3, 0), 0);
  });

  it('keeps back time for the long history, which runs last and takes what the level has left', () => {
    // A level of 60 s whose traces ran at 20 steps/s: a history of 500 steps is 25 s, kept back 62.5 s... at most half, 30 s.
    assert.equal(historyReserveMs(60_000, 25_000), 30_000);
    assert.equal(historyReserveMs(60_000, 10_000), 25_000);
    assert.equal(historyReserveMs(60_000, 4_000), 10_000);
    // Path tests (3) of paths 3 + fast-check 3, from 60 s less 15 s kept back.
    assert.equal(checkAllotmentMs('paths', 60_000, 6, 15_000), 22_500);
    assert.equal(checkAllotmentMs('history', 21_000, 0, 15_000), 21_000);
  });

  it("lets shrinking use the rest of the run, the check's share with --keep-going, and at least a quarter of the share", () => {
    // 60 s budget, 40 s left, a check of 10 s: the rest is 40 - 10 - 3 (the reserve) = 27 s.
    assert.equal(shrinkBudgetMs(10_000, 40_000, 60_000, false), 27_000);
    assert.equal(shrinkBudgetMs(10_000, 40_000, 60_000, true), 10_000);
    // The last check of the run: nothing after it, a quarter of its share.
    assert.equal(shrinkBudgetMs(10_000, 10_000, 60_000, false), 2_500);
  });

  it('a deadline says what is left and whether a unit fits', () => {
    let now = 1000;
    const deadline = new Deadline(5000, () => now);
    assert.equal(deadline.remainingMs(), 4000);
    assert.equal(deadline.fits(4000), true);
    assert.equal(deadline.fits(4001), false);
    assert.equal(deadline.passed(), false);
    now = 6000;
    assert.equal(deadline.remainingMs(), 0);
    assert.equal(deadline.passed(), true);
  });

  it('estimates a unit from the steps per second measured, and lets every unit start before a measurement', () => {
    const rate = new StepRate();
    assert.equal(rate.estimateMs(450), 0);
    rate.record(100, 1000);
    rate.record(0, 5000); // a unit without steps says nothing about the rate
    assert.equal(rate.stepsPerSecond, 100);
    assert.equal(rate.estimateMs(450), 4500);
  });
});
