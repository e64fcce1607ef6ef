import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crashOutcomes, matchOutcome } from './crashOutcomes.ts';
import type { ObservedState } from './crashOutcomes.ts';
import { bits } from './bits.ts';
import * as rules from './rules.ts';
import type { ModelState } from './types.ts';

const start = rules.initialState({ regions: 2, regionSize: 512 }, 'z');
const summary = (state: ModelState) =>
  `${state.phase} P=${state.primary.join(',')} X=${bits(state.next)} W=${state.cow.map((c) => c ?? '_').join(',')}`;
const observe = (state: ModelState): ObservedState => state;
const never = () => false;

describe('crash outcomes', () => {
  it('of an idle write: old data with or without the bit, or new data with the bit', () => {
    const outcomes = crashOutcomes(start, { type: 'write', region: 0, data: 'A1', size: 512 }, { torn: false });
    assert.deepEqual(outcomes.map((o) => summary(o.state)).sort(), [
      'idle P=A1,z X=10 W=_,_',
      'idle P=z,z X=00 W=_,_',
      'idle P=z,z X=10 W=_,_',
    ]);
    assert.ok(outcomes.every((o) => !o.state.crashed && o.mix === null));
  });

  it('of a first write in a cycle: never the new data without its preserved copy and its bit', () => {
    const swapped = rules.swapMaps(rules.write(start, 0, 'A1'));
    const outcomes = crashOutcomes(swapped, { type: 'write', region: 0, data: 'A2', size: 512 }, { torn: false });
    const summaries = outcomes.map((o) => summary(o.state)).sort();
    assert.equal(summaries.length, 5);
    assert.ok(summaries.includes('replicating P=A2,z X=10 W=A1,_'));
    assert.ok(!summaries.some((s) => s.startsWith('replicating P=A2') && !s.endsWith('X=10 W=A1,_')));
  });

  it('of startCycle and completeCycle: before or after, nothing in between', () => {
    const written = rules.write(start, 1, 'B1');
    const swap = crashOutcomes(written, { type: 'startCycle' }, { torn: false });
    assert.deepEqual(swap.map((o) => `${o.state.phase} C=${bits(o.state.current)} X=${bits(o.state.next)}`).sort(), [
      'idle C=00 X=01',
      'replicating C=01 X=00',
    ]);
    const sent = rules.sendRegion(rules.swapMaps(written), 1);
    const done = crashOutcomes(sent, { type: 'completeCycle' }, { torn: false });
    // The far side commits before the primary's durable step (docs/protocol.md section 10):
    // running with D old or new, or complete with D new; never complete with D old.
    assert.deepEqual(done.map((o) => `${o.state.phase} D=${o.state.consistent.join(',')}`).sort(), [
      'idle D=z,B1',
      'replicating D=z,B1',
      'replicating D=z,z',
    ]);
    assert.ok(
      done.every((o) => o.state.sent.every((s) => !s)),
      'the sent set is volatile',
    );
  });

  it('of every operation but completeCycle: D as it was', () => {
    const done = rules.completeCycle(rules.sendRegion(rules.swapMaps(rules.write(start, 1, 'B1')), 1));
    const swapped = rules.swapMaps(rules.write(done, 1, 'B2'));
    const ops = [
      [done, { type: 'write', region: 0, data: 'A1', size: 512 }],
      [done, { type: 'startCycle' }],
      [swapped, { type: 'transfer', region: 1 }],
      [swapped, { type: 'write', region: 1, data: 'B3', size: 512 }],
    ] as const;
    for (const [before, op] of ops) {
      const outcomes = crashOutcomes(before, op, { torn: true });
      assert.ok(
        outcomes.every((o) => o.state.consistent.join(',') === 'z,B1'),
        `${op.type}`,
      );
    }
  });

  it('matches an observed D when the implementation reports one, and ignores it otherwise', () => {
    const sent = rules.sendRegion(rules.swapMaps(rules.write(start, 1, 'B1')), 1);
    const outcomes = crashOutcomes(sent, { type: 'completeCycle' }, { torn: false });
    const running = { ...observe(rules.recover(rules.crash(sent))) };
    const { consistent: _, ...withoutD } = running;
    assert.equal(matchOutcome(outcomes, withoutD, never)?.consistent.join(','), 'z,z');
    assert.equal(matchOutcome(outcomes, { ...running, consistent: ['z', 'B1'] }, never)?.consistent.join(','), 'z,B1');
    const completed = observe(rules.recover(rules.crash(rules.completeCycle(sent))));
    assert.equal(matchOutcome(outcomes, { ...completed, consistent: ['z', 'z'] }, never), null);
  });

  it('of a torn transfer: the secondary may be a sector-wise mix', () => {
    const swapped = rules.swapMaps(rules.write(start, 0, 'A1'));
    const outcomes = crashOutcomes(swapped, { type: 'transfer', region: 0 }, { torn: true });
    const torn = outcomes.find((o) => o.mix !== null);
    assert.deepEqual(torn?.mix, { volume: 'secondary', region: 0, old: 'z', new: 'A1' });
    const observed = { ...observe(torn!.state), secondary: ['mixed', 'z'] };
    assert.equal(matchOutcome(outcomes, observed, never), null, 'not a mix when the bytes say no');
    const continued = matchOutcome(
      outcomes,
      observed,
      (old, next, seen) => old === 'z' && next === 'A1' && seen === 'mixed',
    );
    assert.deepEqual(continued?.secondary, ['mixed', 'z']);
  });

  it('of a rejected operation or a crash between operations: exactly the state', () => {
    const outcomes = crashOutcomes(start, { type: 'transfer', region: 0 }, { torn: true });
    assert.equal(outcomes.length, 1);
    assert.deepEqual(outcomes[0]!.state, start);
  });

  it('match only an allowed state', () => {
    const swapped = rules.swapMaps(rules.write(start, 0, 'A1'));
    const outcomes = crashOutcomes(swapped, { type: 'write', region: 0, data: 'A2', size: 512 }, { torn: false });
    const lostCopy: ObservedState = { ...observe(swapped), primary: ['A2', 'z'], next: [true, false] };
    assert.equal(matchOutcome(outcomes, lostCopy, never), null);
    const full = rules.write(swapped, 0, 'A2');
    assert.deepEqual(matchOutcome(outcomes, observe(full), never)?.primary, ['A2', 'z']);
  });
});
