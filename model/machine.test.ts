// The statechart and the pure rules agree on every transition of the two-region
// state space (with crashes, reads and every rejection): the verdict, the context
// and the state the statechart ends in. Every statechart transition is taken
// somewhere in it. A planted disagreement on either side is reported.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAgreement } from './agreement.ts';
import type { StepFunction } from './invariants.ts';
import { completionWithoutCommitStatechart, recoveryToIdleStatechart } from './plantedStatecharts.ts';
import * as rules from './rules.ts';
import { allTransitions, modelStatechart, stepFunctionOf } from './transitions.ts';
import type { Op } from './types.ts';

const extraEvents: Op[] = [
  { type: 'read', region: 0, volume: 'primary' },
  { type: 'read', region: 1, volume: 'secondary' },
  { type: 'read', region: 2, volume: 'primary' },
  { type: 'write', region: 2, data: 'X', size: 512 },
  { type: 'write', region: 0, data: 'A9', size: 100 },
  { type: 'transfer', region: 5 },
];

/** The rules with one change: recovery of a crashed cycle goes to idle (and drops the cycle). */
const recoveryToIdleRules: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  if (op.type !== 'recover' || !result.ok || state.phase !== 'replicating') return result;
  return { ok: true, state: rules.completeCycle(result.state) };
};

describe('the statechart', () => {
  it('has a stable, unique id for every transition', () => {
    const ids = allTransitions().map((t) => t.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(ids.includes('replicating:write[firstWriteThisCycle]'));
    assert.ok(ids.includes('replicating.sending:completeCycle E_NOT_DRAINED'));
    assert.ok(ids.includes('crashed.whileReplicating:recover'));
  });

  it('agrees with the pure rules on every transition of the N=2 state space, and takes every transition', () => {
    const result = checkAgreement({ regions: 2, values: 2, extraEvents, statesMax: 10_000 });
    assert.deepEqual(result.disagreements, []);
    // The explorer's N=2 state space with crash outcomes followed (model/explorer.test.ts), D not told apart.
    assert.equal(result.states, 7528);
    assert.ok(result.transitions > 30_000);
    const missing = allTransitions()
      .map((t) => t.id)
      .filter((id) => !result.covered.has(id));
    assert.deepEqual(missing, []);
  });

  it("as a step function (what the oracle's LIVENESS looks ahead with) gives the rules' results, rejections included", () => {
    const byChart = stepFunctionOf(modelStatechart);
    let state = rules.initialState({ regions: 2, regionSize: 512 }, '');
    const ops: Op[] = [
      { type: 'write', region: 0, data: 'A1', size: 512 },
      { type: 'transfer', region: 0 },
      { type: 'startCycle' },
      { type: 'crash' },
      { type: 'recover' },
    ];
    for (const op of ops) {
      const expected = rules.step(state, op);
      assert.deepEqual(byChart(state, op), expected, op.type);
      state = expected.state;
    }
  });

  it('reports a planted statechart whose recovery during a cycle goes to idle', () => {
    const result = checkAgreement({
      regions: 2,
      values: 2,
      statechart: recoveryToIdleStatechart(),
      statesMax: 10_000,
    });
    assert.ok(result.disagreements.length > 0);
    const first = result.disagreements[0]!;
    assert.equal(first.what, 'state value');
    assert.equal(first.op.type, 'recover');
    assert.equal(first.byStatechart, '"idle"');
    assert.match(first.byRules, /replicating/);
    // Its context still comes from the right rule: only the state value shows the bug.
    assert.ok(result.disagreements.every((d) => d.what === 'state value' && d.op.type === 'recover'));
  });

  it("reports a planted statechart whose completion skips the far side's commit: D is compared", () => {
    const result = checkAgreement({
      regions: 2,
      values: 2,
      statechart: completionWithoutCommitStatechart(),
      statesMax: 10_000,
    });
    const first = result.disagreements[0];
    assert.equal(first?.op.type, 'completeCycle');
    assert.equal(first?.what, 'context');
  });

  it('reports planted rules whose recovery during a cycle goes to idle', () => {
    const result = checkAgreement({ regions: 2, values: 2, step: recoveryToIdleRules, statesMax: 10_000 });
    const first = result.disagreements[0]!;
    assert.equal(first.op.type, 'recover');
    assert.deepEqual(
      result.disagreements.filter((d) => d.op === first.op && d.before === first.before).map((d) => d.what),
      ['context', 'state value'],
    );
  });
});
