import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explore } from './explorer.ts';
import type { StepFunction } from './explorer.ts';
import { checkState, checkTransition } from './invariants.ts';
import * as rules from './rules.ts';

// Broken rules, planted to show that the explorer finds what they break.
const noCopyOnWrite: StepFunction = (state, op) => {
  if (op.type === 'write' && rules.judge(state, op) === null) {
    return { ok: true, state: rules.markNext(rules.writePrimary(state, op.region, op.data), op.region) };
  }
  return rules.step(state, op);
};

const swapKeepsNext: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  return op.type === 'startCycle' && result.ok
    ? { ok: true, state: { ...result.state, next: state.next.slice() } }
    : result;
};

const completesEarly: StepFunction = (state, op) => {
  if (op.type === 'completeCycle' && state.phase === 'replicating' && !state.crashed)
    return { ok: true, state: rules.completeCycle(state) };
  return rules.step(state, op);
};

const sendsPrimary: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  if (op.type !== 'transfer' || !result.ok) return result;
  const secondary = result.state.secondary.slice();
  secondary[op.region] = state.primary[op.region]!;
  return { ok: true, state: { ...result.state, secondary } };
};

describe('the explorer', () => {
  it('finds the independent counts for N=2 and N=3 with crashes, and no violation', () => {
    const small = explore({ regions: 2, values: 2, crash: true, statesMax: 1_000_000 });
    assert.equal(small.states, 1980);
    assert.equal(small.violation, null);
    const result = explore({ regions: 3, values: 2, crash: true, statesMax: 1_000_000 });
    assert.equal(result.states, 57_078);
    assert.equal(result.transitions, 359_586);
    assert.equal(result.stoppedEarly, false);
    assert.equal(result.violation, null);
  });

  it('without crashes explores fewer states', () => {
    const result = explore({ regions: 2, values: 2, crash: false, statesMax: 1_000_000 });
    assert.equal(result.states, 1170);
    assert.equal(result.violation, null);
  });

  it('says when --states-max stopped it early', () => {
    const result = explore({ regions: 3, values: 2, crash: true, statesMax: 1000 });
    assert.equal(result.states, 1000);
    assert.equal(result.stoppedEarly, true);
  });

  const planted: [string, StepFunction, string, number][] = [
    ['no copy-on-write during a cycle', noCopyOnWrite, 'INV-SNAPSHOT', 2],
    ['a swap that keeps the next map', swapKeepsNext, 'INV-CLEAN', 2],
    ['completion before every region is sent', completesEarly, 'INV-POINT-IN-TIME', 3],
    ['a transfer that sends the primary', sendsPrimary, 'INV-POINT-IN-TIME', 6],
  ];
  for (const [name, step, invariant, lengthMax] of planted) {
    it(`finds a planted bug, ${name}, with a shortest path of at most ${lengthMax} steps`, () => {
      const result = explore({ regions: 2, values: 2, crash: true, statesMax: 1_000_000, step });
      assert.ok(result.violation !== null, 'a violation is found');
      assert.equal(result.violation.violations[0]!.invariant, invariant);
      assert.ok(
        result.violation.path.length <= lengthMax,
        `path of ${result.violation.path.length} steps: ${result.violation.path.map((op) => op.type).join(', ')}`,
      );
      // The path really breaks the invariant under the broken rules, and not under the right ones.
      const broken = (stepWith: StepFunction) => {
        let state = rules.initialState({ regions: 2, regionSize: 512 }, '');
        const found: string[] = [];
        for (const op of result.violation!.path) {
          const next = stepWith(state, op);
          found.push(...checkState(next.state).map((v) => v.invariant));
          if (next.ok) found.push(...checkTransition(state, op, next.state).map((v) => v.invariant));
          state = next.state;
        }
        return found;
      };
      assert.ok(broken(step).includes(invariant));
      assert.deepEqual(broken(rules.step), []);
    });
  }
});
