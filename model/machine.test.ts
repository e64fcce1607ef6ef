// The statechart and the pure rules agree on every transition of the two-region
// state space (with crashes, reads and every rejection), and every statechart
// transition is taken somewhere in it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exploreEvents } from './explorer.ts';
import * as rules from './rules.ts';
import { allTransitions, snapshotOf, stateOf, stepMachine } from './transitions.ts';
import type { ModelState, Op } from './types.ts';

function key(state: ModelState): string {
  return JSON.stringify([
    state.phase,
    state.crashed,
    state.primary,
    state.secondary,
    state.current,
    state.next,
    state.cow,
    state.sent,
    state.primaryAtSwap,
  ]);
}

describe('the statechart', () => {
  it('has a stable, unique id for every transition', () => {
    const ids = allTransitions().map((t) => t.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(ids.includes('replicating:write[firstWriteThisCycle]'));
    assert.ok(ids.includes('replicating.sending:completeCycle E_NOT_DRAINED'));
    assert.ok(ids.includes('crashed.whileReplicating:recover'));
  });

  it('agrees with the pure rules on every transition of the N=2 state space, and takes every transition', () => {
    const regions = 2;
    const events: Op[] = [
      ...exploreEvents(regions, 2, true),
      { type: 'read', region: 0, volume: 'primary' },
      { type: 'read', region: 1, volume: 'secondary' },
      { type: 'read', region: 2, volume: 'primary' },
      { type: 'write', region: 2, data: 'X', size: 512 },
      { type: 'write', region: 0, data: 'A9', size: 100 },
      { type: 'transfer', region: 5 },
    ];
    const start = rules.initialState({ regions, regionSize: 512 }, '');
    const seen = new Map<string, ModelState>([[key(start), start]]);
    const queue: ModelState[] = [start];
    const covered = new Set<string>();
    let transitions = 0;
    const statesMax = 10_000;
    while (queue.length > 0) {
      assert.ok(seen.size <= statesMax, 'the N=2 state space is bounded');
      const state = queue.shift()!;
      const snapshot = snapshotOf(state);
      for (const op of events) {
        const byRules = rules.step(state, op);
        const { snapshot: after, taken } = stepMachine(snapshot, op);
        for (const id of taken) covered.add(id);
        transitions++;
        const byMachine = stateOf(after);
        assert.equal(
          after.context.rejection?.code ?? 'ok',
          byRules.ok ? 'ok' : byRules.rejection.code,
          `${op.type} in ${key(state)}`,
        );
        assert.equal(key(byMachine), key(byRules.state), `${op.type} in ${key(state)}`);
        const isCrashed = typeof after.value === 'object' && 'crashed' in after.value;
        assert.equal(isCrashed, byRules.state.crashed);
        if (!seen.has(key(byRules.state))) {
          seen.set(key(byRules.state), byRules.state);
          queue.push(byRules.state);
        }
      }
    }
    assert.equal(seen.size, 1980);
    assert.ok(transitions > 30_000);
    const missing = allTransitions()
      .map((t) => t.id)
      .filter((id) => !covered.has(id));
    assert.deepEqual(missing, []);
  });
});
