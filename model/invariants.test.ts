import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkCrashOutcome, checkLiveness, checkState, checkTransition } from './invariants.ts';
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
      checkTransition(rules.write(start, 0, 'A1'), { type: 'startCycle' }, keptNext).map((v) => v.invariant),
      ['INV-CLEAN'],
    );
  });

  it('INV-POINT-IN-TIME catches a completion with S != P@swap', () => {
    const swapped = rules.swapMaps(rules.write(start, 0, 'A1'));
    const unsent = rules.completeCycle(swapped);
    // The far side commits what it holds, which is not the point either (INV-DR).
    assert.deepEqual(
      checkTransition(swapped, { type: 'completeCycle' }, unsent).map((v) => v.invariant),
      ['INV-POINT-IN-TIME', 'INV-DR'],
    );
  });

  it('INV-DR: D is S while idle, and S outside C while replicating', () => {
    const done = rules.completeCycle(rules.sendRegion(rules.swapMaps(rules.write(start, 0, 'A1')), 0));
    assert.deepEqual(done.consistent, ['A1', 'z']);
    assert.deepEqual(names({ ...done, consistent: ['z', 'z'] }), ['INV-DR']);
    const running = rules.sendRegion(rules.swapMaps(rules.write(done, 0, 'A2')), 0);
    // Region 0 is in C: the old point (A1) while the far side has not committed.
    assert.deepEqual(checkState(running), []);
    const broken = { ...running, consistent: ['A1', 'B7'] };
    assert.deepEqual(
      checkState(broken).map((v) => `${v.invariant} ${v.region}`),
      ['INV-DR 1'],
    );
  });

  it('INV-DR: only completion changes D, to the whole new point', () => {
    const swapped = rules.swapMaps(rules.write(rules.write(start, 0, 'A1'), 1, 'B1'));
    const sentA = rules.sendRegion(swapped, 0);
    const straight = { ...sentA, consistent: ['A1', 'z'] };
    assert.deepEqual(
      checkTransition(swapped, { type: 'transfer', region: 0 }, straight).map((v) => v.invariant),
      ['INV-DR'],
    );
    const sent = rules.sendRegion(sentA, 1);
    assert.deepEqual(checkTransition(sent, { type: 'completeCycle' }, rules.completeCycle(sent)), []);
    const half = { ...rules.completeCycle(sent), consistent: ['A1', 'z'] };
    assert.deepEqual(
      checkTransition(sent, { type: 'completeCycle' }, half).map((v) => `${v.invariant} ${v.region}`),
      ['INV-DR 1'],
    );
  });

  it('INV-DR after a crash inside completeCycle: the old or the new point, the new one once the cycle is complete', () => {
    const sent = rules.sendRegion(rules.swapMaps(rules.write(start, 0, 'A1')), 0);
    const op = { type: 'completeCycle' } as const;
    const recovered = (state: ModelState) => rules.recover(rules.crash(state));
    assert.deepEqual(checkCrashOutcome(sent, op, recovered(sent)), []);
    assert.deepEqual(checkCrashOutcome(sent, op, recovered(rules.commitFarSide(sent))), []);
    assert.deepEqual(checkCrashOutcome(sent, op, recovered(rules.completeCycle(sent))), []);
    const completedOld = { ...recovered(rules.completeCycle(sent)), consistent: ['z', 'z'] };
    assert.deepEqual(
      checkCrashOutcome(sent, op, completedOld).map((v) => v.invariant),
      ['INV-DR'],
    );
    // A crash inside anything else leaves D as it was.
    const transferred = { ...recovered(sent), consistent: ['A1', 'z'] };
    assert.deepEqual(
      checkCrashOutcome(sent, { type: 'transfer', region: 0 }, transferred).map((v) => v.invariant),
      ['INV-DR'],
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

  it('INV-DURABLE catches an accepted operation that changes P other than by the write acknowledged', () => {
    const written = rules.write(start, 0, 'A1');
    const wrongRegion = { ...written, primary: ['A1', 'B9'] };
    const write = { type: 'write', region: 0, data: 'A1', size: 512 } as const;
    assert.deepEqual(
      checkTransition(start, write, wrongRegion).map((v) => `${v.invariant} ${v.region}`),
      ['INV-DURABLE 1'],
    );
    const sent = rules.sendRegion(rules.sendRegion(rules.swapMaps(rules.write(written, 1, 'B1')), 0), 1);
    const reverted = { ...rules.completeCycle(sent), primary: ['z', 'B1'] };
    assert.deepEqual(
      checkTransition(sent, { type: 'completeCycle' }, reverted).map((v) => v.invariant),
      ['INV-DURABLE'],
    );
  });

  it('INV-DURABLE lets a crash inside a write leave the old or the new content of that region only', () => {
    const write = { type: 'write', region: 0, data: 'A1', size: 512 } as const;
    assert.deepEqual(checkCrashOutcome(start, write, start), []);
    assert.deepEqual(checkCrashOutcome(start, write, rules.write(start, 0, 'A1')), []);
    const other = { ...start, primary: ['z', 'B1'] };
    assert.deepEqual(
      checkCrashOutcome(start, write, other).map((v) => v.invariant),
      ['INV-DURABLE'],
    );
  });

  it('INV-CURRENT catches a transfer that clears its current bit', () => {
    const swapped = rules.swapMaps(rules.write(start, 0, 'A1'));
    const sent = rules.sendRegion(swapped, 0);
    const cleared = { ...sent, current: [false, false] };
    assert.deepEqual(checkTransition(swapped, { type: 'transfer', region: 0 }, sent), []);
    assert.deepEqual(
      checkTransition(swapped, { type: 'transfer', region: 0 }, cleared).map((v) => v.invariant),
      ['INV-CURRENT'],
    );
  });

  it('INV-VOLATILE catches a crash that keeps the sent set', () => {
    const sent = rules.sendRegion(rules.swapMaps(rules.write(start, 0, 'A1')), 0);
    assert.deepEqual(checkState(rules.crash(sent)), []);
    assert.deepEqual(names({ ...sent, crashed: true }), ['INV-VOLATILE']);
  });

  it('LIVENESS looks ahead with the rules it is given', () => {
    const written = rules.write(start, 0, 'A1');
    assert.deepEqual(checkLiveness(written), []);
    const neverStarts = (state: ModelState, op: Parameters<typeof rules.step>[1]) =>
      op.type === 'startCycle'
        ? { ok: false as const, state, rejection: { code: 'E_PHASE' as const, message: 'planted' } }
        : rules.step(state, op);
    assert.deepEqual(
      checkLiveness(written, neverStarts).map((v) => v.invariant),
      ['LIVENESS'],
    );
  });
});
