import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkLiveness, checkState, checkTransition } from './invariants.ts';
import * as rules from './rules.ts';
import type { ModelState } from './types.ts';

const start = rules.initialState({ regions: 2, regionSize: 512 }, 'z');
const names = (state: ModelState) => checkState(state).map((v) => v.invariant);

describe('invariants', () => {
  it('hold in the initial state and along a normal cycle', () => {
    assert.deepEqual(checkState(start), []);
    const written = rules.write(start, 0, 'A1');
    const swapped = rules.swapMaps(written);
    const overwritten = rules.write(swapped, 0, 'A2');
    const sent = rules.sendRegion(overwritten, 0);
    const done = rules.completeCycle(sent);
    for (const state of [written, swapped, overwritten, sent, done]) assert.deepEqual(checkState(state), []);
    assert.deepEqual(checkTransition(sent, { type: 'completeCycle' }, done), []);
    assert.deepEqual(checkLiveness(done), []);
  });

  it('INV-COVER catches a write that sets no bit', () => {
    const lost = rules.writePrimary(start, 1, 'B1');
    assert.deepEqual(names(lost), ['INV-COVER']);
    assert.equal(checkState(lost)[0]!.region, 1);
  });

  it('INV-SNAPSHOT catches an overwrite without copy-on-write', () => {
    const swapped = rules.swapMaps(rules.write(start, 0, 'A1'));
    const noCow = rules.markNext(rules.writePrimary(swapped, 0, 'A2'), 0);
    assert.deepEqual(names(noCow), ['INV-SNAPSHOT']);
  });

  it('INV-CLEAN catches an idle state with C set or W holding a copy', () => {
    const dirty: ModelState = { ...start, current: [true, false], next: [true, false] };
    assert.ok(names(dirty).includes('INV-CLEAN'));
    const swapped = rules.swapMaps(rules.write(start, 0, 'A1'));
    const keptNext: ModelState = { ...swapped, next: [true, false] };
    assert.deepEqual(
      checkTransition(start, { type: 'startCycle' }, keptNext).map((v) => v.invariant),
      ['INV-CLEAN'],
    );
  });

  it('INV-POINT-IN-TIME catches a completion with S != P@swap', () => {
    const swapped = rules.swapMaps(rules.write(start, 0, 'A1'));
    const unsent = rules.completeCycle(swapped);
    assert.deepEqual(
      checkTransition(swapped, { type: 'completeCycle' }, unsent).map((v) => v.invariant),
      ['INV-POINT-IN-TIME'],
    );
  });

  it('INV-MINIMAL catches a transfer of a region outside C', () => {
    const swapped = rules.swapMaps(rules.write(rules.write(start, 0, 'A1'), 1, 'B1'));
    const onlyA = { ...swapped, current: [true, false] };
    const sentB = rules.sendRegion(onlyA, 1);
    assert.deepEqual(
      checkTransition(onlyA, { type: 'transfer', region: 1 }, sentB).map((v) => v.invariant),
      ['INV-MINIMAL'],
    );
  });

  it('INV-DURABLE catches a recovery that loses a write', () => {
    const written = rules.crash(rules.write(start, 0, 'A1'));
    const lost = { ...rules.recover(written), primary: ['z', 'z'] };
    assert.deepEqual(
      checkTransition(written, { type: 'recover' }, lost).map((v) => v.invariant),
      ['INV-DURABLE'],
    );
  });

  it('LIVENESS holds from a crashed cycle and fails when a bit is lost', () => {
    const crashed = rules.crash(rules.write(rules.swapMaps(rules.write(start, 0, 'A1')), 1, 'B1'));
    assert.deepEqual(checkLiveness(crashed), []);
    const stuck: ModelState = { ...start, primary: ['A1', 'z'] };
    assert.deepEqual(
      checkLiveness(stuck).map((v) => v.invariant),
      ['LIVENESS'],
    );
  });
});
