import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bits } from './bits.ts';
import * as rules from './rules.ts';
import type { ModelState, Op } from './types.ts';

const geometry = { regions: 4, regionSize: 512 };
const write = (region: number, data: string): Op => ({ type: 'write', region, data, size: 512 });

function run(state: ModelState, ops: Op[]): ModelState {
  for (const op of ops) {
    const result = rules.step(state, op);
    assert.ok(result.ok, `${op.type} was rejected: ${result.ok ? '' : result.rejection.message}`);
    state = result.state;
  }
  return state;
}

describe('rules', () => {
  it('start as docs/protocol.md section 1 says: zeros, clear bits, empty W, idle', () => {
    const state = rules.initialState(geometry, 'z');
    assert.deepEqual(state.primary, ['z', 'z', 'z', 'z']);
    assert.deepEqual(state.secondary, ['z', 'z', 'z', 'z']);
    assert.equal(bits(state.current) + bits(state.next), '00000000');
    assert.deepEqual(state.cow, [null, null, null, null]);
    assert.equal(state.phase, 'idle');
    assert.equal(state.primaryAtSwap, null);
  });

  it('produce the FIG. 4 tables at T1, T2 and T3', () => {
    let state = rules.initialState(geometry, '');
    state = run(state, [write(0, 'A0'), write(1, 'B0'), write(2, 'C0'), write(3, 'D0'), { type: 'startCycle' }]);
    state = run(
      state,
      [0, 1, 2, 3].map((region): Op => ({ type: 'transfer', region })),
    );
    state = run(state, [{ type: 'completeCycle' }, write(0, 'A1'), write(1, 'B1'), write(3, 'D1')]);
    assert.equal(bits(state.next), '1101');
    state = run(state, [
      { type: 'startCycle' },
      write(1, 'B2'),
      { type: 'transfer', region: 0 },
      { type: 'transfer', region: 1 },
      { type: 'transfer', region: 3 },
    ]);
    // T1
    assert.deepEqual(state.primary, ['A1', 'B2', 'C0', 'D1']);
    assert.deepEqual(state.cow, [null, 'B1', null, null]);
    assert.deepEqual(state.secondary, ['A1', 'B1', 'C0', 'D1']);
    assert.equal(bits(state.next), '0100');
    state = run(state, [{ type: 'completeCycle' }, { type: 'startCycle' }, { type: 'transfer', region: 1 }]);
    // T2
    assert.equal(bits(state.current), '0100');
    assert.equal(bits(state.next), '0000');
    assert.deepEqual(state.secondary, ['A1', 'B2', 'C0', 'D1']);
    state = run(state, [write(0, 'A0'), write(1, 'B0'), write(3, 'D0')]);
    // T3: every overwritten region is preserved, whether or not its C bit is set.
    assert.deepEqual(state.cow, ['A1', 'B2', null, 'D1']);
    assert.equal(bits(state.next), '1101');
    assert.equal(bits(state.current), '0100');
  });

  it('preserve only on the first write of a cycle', () => {
    let state = run(rules.initialState(geometry, 'z'), [
      write(0, 'A1'),
      { type: 'startCycle' },
      write(0, 'A2'),
      write(0, 'A3'),
    ]);
    assert.equal(state.cow[0], 'A1');
    assert.equal(state.primary[0], 'A3');
    state = run(state, [{ type: 'transfer', region: 0 }]);
    assert.equal(state.secondary[0], 'A1', 'a transfer sends the snapshot view, not the primary');
  });

  it('do not preserve while idle', () => {
    const state = run(rules.initialState(geometry, 'z'), [write(2, 'C1'), write(2, 'C2')]);
    assert.deepEqual(state.cow, [null, null, null, null]);
  });

  it('keep the C bits set until completion, and allow a resend', () => {
    const state = run(rules.initialState(geometry, 'z'), [
      write(1, 'B1'),
      { type: 'startCycle' },
      { type: 'transfer', region: 1 },
      { type: 'transfer', region: 1 },
    ]);
    assert.equal(bits(state.current), '0100');
    assert.equal(rules.everyCurrentRegionSent(state), true);
  });

  it('allow an empty cycle', () => {
    const state = run(rules.initialState(geometry, 'z'), [{ type: 'startCycle' }, { type: 'completeCycle' }]);
    assert.equal(state.phase, 'idle');
  });

  it('lose the sent set in a crash, so a resumed cycle must send again', () => {
    let state = run(rules.initialState(geometry, 'z'), [
      write(0, 'A1'),
      { type: 'startCycle' },
      { type: 'transfer', region: 0 },
      { type: 'crash' },
      { type: 'recover' },
    ]);
    assert.equal(state.phase, 'replicating');
    const early = rules.step(state, { type: 'completeCycle' });
    assert.equal(early.ok, false);
    assert.equal(early.ok ? null : early.rejection.code, 'E_NOT_DRAINED');
    state = run(state, [{ type: 'transfer', region: 0 }, { type: 'completeCycle' }]);
    assert.equal(state.secondary[0], 'A1');
  });
});

describe('rejections', () => {
  const idle = rules.initialState(geometry, 'z');
  const replicating = run(idle, [write(1, 'B1'), { type: 'startCycle' }]);
  const crashed = run(replicating, [{ type: 'crash' }]);
  const cases: [string, ModelState, Op, string][] = [
    ['write past the end', idle, write(4, 'x'), 'E_RANGE'],
    ['write to a negative region', idle, write(-1, 'x'), 'E_RANGE'],
    ['write to a fractional region', idle, write(1.5, 'x'), 'E_RANGE'],
    ['write of a short region', idle, { type: 'write', region: 0, data: 'x', size: 511 }, 'E_SIZE'],
    ['E_RANGE before E_SIZE', idle, { type: 'write', region: 9, data: 'x', size: 1 }, 'E_RANGE'],
    ['read past the end', idle, { type: 'read', region: 4, volume: 'primary' }, 'E_RANGE'],
    ['startCycle while replicating', replicating, { type: 'startCycle' }, 'E_PHASE'],
    ['transfer while idle', idle, { type: 'transfer', region: 0 }, 'E_PHASE'],
    ['E_RANGE before E_PHASE', idle, { type: 'transfer', region: 7 }, 'E_RANGE'],
    ['transfer of a region not in C', replicating, { type: 'transfer', region: 0 }, 'E_NOT_CURRENT'],
    ['completeCycle while idle', idle, { type: 'completeCycle' }, 'E_PHASE'],
    ['completeCycle before every region is sent', replicating, { type: 'completeCycle' }, 'E_NOT_DRAINED'],
    ['recover while running', idle, { type: 'recover' }, 'E_PHASE'],
    ['a write after a crash, whatever its arguments', crashed, write(99, 'x'), 'E_PHASE'],
    ['a transfer after a crash', crashed, { type: 'transfer', region: 1 }, 'E_PHASE'],
    ['a read after a crash', crashed, { type: 'read', region: 0, volume: 'secondary' }, 'E_PHASE'],
  ];
  for (const [name, state, op, code] of cases) {
    it(`${name}: ${code}, changing nothing`, () => {
      const result = rules.step(state, op);
      assert.equal(result.ok, false);
      if (result.ok) return;
      assert.equal(result.rejection.code, code);
      assert.equal(result.state, state);
      assert.match(result.rejection.message, new RegExp(`^${op.type}\\(`));
      assert.match(result.rejection.message, /while (idle|replicating|crashed)/);
    });
  }

  it('a crash is allowed in any state, and only recover after it', () => {
    assert.equal(rules.step(crashed, { type: 'crash' }).ok, true);
    assert.equal(rules.step(crashed, { type: 'recover' }).ok, true);
  });

  it('geometry is checked', () => {
    assert.throws(() => rules.initialState({ regions: 0, regionSize: 512 }, 'z'), RangeError);
  });
});
