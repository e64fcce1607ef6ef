// Broken rules, planted to show that the checks find what they break: the explorer's
// tests (model/explorer.test.ts) and the counterexample traces of `cowmap explore`
// (bin/commands/explore.test.ts). Test code: nothing outside a test imports it.

import * as rules from './rules.ts';
import type { StepFunction } from './invariants.ts';

export const noCopyOnWrite: StepFunction = (state, op) => {
  if (op.type === 'write' && rules.judge(state, op) === null) {
    return { ok: true, state: rules.markNext(rules.writePrimary(state, op.region, op.data), op.region) };
  }
  return rules.step(state, op);
};

export const swapKeepsNext: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  return op.type === 'startCycle' && result.ok
    ? { ok: true, state: { ...result.state, next: state.next.slice() } }
    : result;
};

export const completesEarly: StepFunction = (state, op) => {
  if (op.type === 'completeCycle' && state.phase === 'replicating' && !state.crashed)
    return { ok: true, state: rules.completeCycle(state) };
  return rules.step(state, op);
};

export const sendsPrimary: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  if (op.type !== 'transfer' || !result.ok) return result;
  const secondary = result.state.secondary.slice();
  secondary[op.region] = state.primary[op.region]!;
  return { ok: true, state: { ...result.state, secondary } };
};

export const startCycleRejected: StepFunction = (state, op) =>
  op.type === 'startCycle' && rules.judge(state, op) === null
    ? { ok: false, state, rejection: { code: 'E_PHASE', message: 'startCycle(no region) while idle: planted' } }
    : rules.step(state, op);

/** Recovery of a crashed cycle puts back the preserved copy of every region, as if to undo the cycle's writes. */
export const recoveryRevertsToCopy: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  if (op.type !== 'recover' || !result.ok || state.phase !== 'replicating') return result;
  const primary = result.state.primary.map((content, region) => state.cow[region] ?? content);
  return { ok: true, state: { ...result.state, primary } };
};

/** Completion puts back the preserved copies into P before it empties W (a cycle's end outside a cycle). */
export const completionRevertsToCopy: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  if (op.type !== 'completeCycle' || !result.ok) return result;
  const primary = result.state.primary.map((content, region) => state.cow[region] ?? content);
  return { ok: true, state: { ...result.state, primary } };
};

export const recoveryZeroes: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  if (op.type !== 'recover' || !result.ok) return result;
  return { ok: true, state: { ...result.state, primary: result.state.primary.map(() => '') } };
};

export const transferClearsCurrent: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  if (op.type !== 'transfer' || !result.ok) return result;
  const current = result.state.current.slice();
  current[op.region] = false;
  return { ok: true, state: { ...result.state, current } };
};

export const crashKeepsSent: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  return op.type === 'crash' && result.ok ? { ok: true, state: { ...result.state, sent: state.sent } } : result;
};

/**
 * Copy-on-write judged by the next bit instead of W. Between operations a write
 * during a cycle sets both, so only a crash inside a write (its bit durable, its
 * copy not) reaches a state where the two differ.
 */
export const copyOnWriteByNextBit: StepFunction = (state, op) => {
  if (op.type !== 'write' || rules.judge(state, op) !== null || state.phase !== 'replicating') {
    return rules.step(state, op);
  }
  const preserved = state.next[op.region] ? state : rules.preserveRegion(state, op.region);
  return { ok: true, state: rules.markNext(rules.writePrimary(preserved, op.region, op.data), op.region) };
};

/** The consistent image taken at the swap (D := P), before the far side has any of the cycle's data. */
export const consistentAtSwap: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  if (op.type !== 'startCycle' || !result.ok) return result;
  return { ok: true, state: { ...result.state, consistent: state.primary.slice() } };
};

/** A transfer applied straight to the consistent image (no journal): D[r] := view(r) before the cycle commits. */
export const consistentAtTransfer: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  if (op.type !== 'transfer' || !result.ok) return result;
  const consistent = result.state.consistent.slice();
  consistent[op.region] = rules.view(state, op.region);
  return { ok: true, state: { ...result.state, consistent } };
};

/** Completion without the far side's commit: D stays the point before. */
export const completionKeepsConsistent: StepFunction = (state, op) => {
  const result = rules.step(state, op);
  if (op.type !== 'completeCycle' || !result.ok) return result;
  return { ok: true, state: { ...result.state, consistent: state.consistent } };
};
