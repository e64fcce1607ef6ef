// The rules of docs/protocol.md section 2 as small pure functions. The statechart
// (machine.ts) calls them from its named guards and actions; the explorer steps
// them directly for speed, and a test shows that both agree on every transition
// of the two-region state space.
//
// Every function returns a new state and never mutates its argument.

import { ModelError } from './modelError.ts';
import type { Content, Geometry, ModelState, Op, Rejection, RejectCode } from './types.ts';

export const regionsMax = 1 << 20;

function replaced<T>(values: readonly T[], index: number, value: T): T[] {
  const copy = values.slice();
  copy[index] = value;
  return copy;
}

function filled<T>(count: number, value: T): T[] {
  return new Array<T>(count).fill(value);
}

/** Content starts as all zero bytes, bits clear, W empty, phase idle (docs/protocol.md section 1). */
export function initialState(geometry: Geometry, zero: Content): ModelState {
  if (!Number.isInteger(geometry.regions) || geometry.regions < 1 || geometry.regions > regionsMax) {
    throw new RangeError(`model: regions must be an integer in 1..${regionsMax}, got ${geometry.regions}`);
  }
  const regions = geometry.regions;
  return {
    geometry,
    phase: 'idle',
    crashed: false,
    primary: filled(regions, zero),
    secondary: filled(regions, zero),
    current: filled(regions, false),
    next: filled(regions, false),
    cow: filled<Content | null>(regions, null),
    sent: filled(regions, false),
    primaryAtSwap: null,
    consistent: filled(regions, zero),
  };
}

// ---- Predicates: the guards of the statechart. -----------------------------

export function regionInRange(state: ModelState, region: number): boolean {
  return Number.isInteger(region) && region >= 0 && region < state.geometry.regions;
}

export function dataSizeOk(state: ModelState, size: number): boolean {
  return size === state.geometry.regionSize;
}

/** A write during a cycle to a region whose point-in-time content is not yet preserved. */
export function firstWriteThisCycle(state: ModelState, region: number): boolean {
  return state.phase === 'replicating' && state.cow[region] === null;
}

export function inCurrentMap(state: ModelState, region: number): boolean {
  return state.current[region] === true;
}

/** Every region of C was sent since the swap or since the last recovery. */
export function everyCurrentRegionSent(state: ModelState): boolean {
  for (let region = 0; region < state.geometry.regions; region++) {
    if (state.current[region] && !state.sent[region]) return false;
  }
  return true;
}

/** The snapshot view: W[r] if it holds a copy, else P[r]. */
export function view(state: ModelState, region: number): Content {
  const preserved = state.cow[region];
  return preserved === null || preserved === undefined ? state.primary[region]! : preserved;
}

// ---- Effects: the actions of the statechart. --------------------------------

/** Copy-on-write: W[r] := P[r]. */
export function preserveRegion(state: ModelState, region: number): ModelState {
  return { ...state, cow: replaced(state.cow, region, state.primary[region]!) };
}

/** P[r] := data. */
export function writePrimary(state: ModelState, region: number, data: Content): ModelState {
  return { ...state, primary: replaced(state.primary, region, data) };
}

/** X[r] := 1. */
export function markNext(state: ModelState, region: number): ModelState {
  return state.next[region] ? state : { ...state, next: replaced(state.next, region, true) };
}

/** The whole write rule: preserve on the first write of the cycle, then write and mark. */
export function write(state: ModelState, region: number, data: Content): ModelState {
  const preserved = firstWriteThisCycle(state, region) ? preserveRegion(state, region) : state;
  return markNext(writePrimary(preserved, region, data), region);
}

/** The swap: C := X; X := clear; W := empty; phase replicating; P@swap := P. */
export function swapMaps(state: ModelState): ModelState {
  const regions = state.geometry.regions;
  return {
    ...state,
    phase: 'replicating',
    current: state.next.slice(),
    next: filled(regions, false),
    cow: filled<Content | null>(regions, null),
    sent: filled(regions, false),
    primaryAtSwap: state.primary.slice(),
  };
}

/** S[r] := view(r); r counts as sent. */
export function sendRegion(state: ModelState, region: number): ModelState {
  return {
    ...state,
    secondary: replaced(state.secondary, region, view(state, region)),
    sent: state.sent[region] ? state.sent : replaced(state.sent, region, true),
  };
}

/**
 * The far side's commit, the first step of completion (docs/protocol.md section 10):
 * the secondary confirmed every region of the cycle, so the consistent image becomes
 * S, which is P@swap of the cycle (INV-POINT-IN-TIME): D := S.
 */
export function commitFarSide(state: ModelState): ModelState {
  return { ...state, consistent: state.secondary.slice() };
}

/** The primary's durable completion step, after the far side's commit: C := clear; W := empty; phase idle. */
export function clearCycle(state: ModelState): ModelState {
  const regions = state.geometry.regions;
  return {
    ...state,
    phase: 'idle',
    current: filled(regions, false),
    cow: filled<Content | null>(regions, null),
    sent: filled(regions, false),
    primaryAtSwap: null,
  };
}

/** Completion: the far side commits the cycle (D := S), then the primary ends it (clearCycle). */
export function completeCycle(state: ModelState): ModelState {
  return clearCycle(commitFarSide(state));
}

/** A crash loses the volatile state: which regions were sent. */
export function crash(state: ModelState): ModelState {
  return { ...state, crashed: true, sent: filled(state.geometry.regions, false) };
}

/** Recovery reopens from durable state; a running cycle resumes with nothing sent. */
export function recover(state: ModelState): ModelState {
  return { ...state, crashed: false };
}

// ---- Rejections, in the order docs/protocol.md section 2 judges them. ----------------

function describe(state: ModelState, op: Op): string {
  const phase = state.crashed ? `crashed (${state.phase})` : state.phase;
  const region = 'region' in op ? `region ${op.region}` : 'no region';
  return `${op.type}(${region}) while ${phase}`;
}

function rejection(state: ModelState, op: Op, code: RejectCode, why: string): Rejection {
  return { code, message: `${describe(state, op)}: ${why}` };
}

/** Why `op` is rejected in `state`, or null when it is allowed. Arguments are judged before the state. */
export function judge(state: ModelState, op: Op): Rejection | null {
  if (op.type === 'crash') return null;
  if (state.crashed) {
    return op.type === 'recover' ? null : rejection(state, op, 'E_PHASE', 'only recover is allowed after a crash');
  }
  const regions = state.geometry.regions;
  switch (op.type) {
    case 'recover':
      return rejection(state, op, 'E_PHASE', 'recover is allowed only after a crash');
    case 'write':
      if (!regionInRange(state, op.region)) return rejection(state, op, 'E_RANGE', `region outside 0..${regions - 1}`);
      if (!dataSizeOk(state, op.size)) {
        return rejection(state, op, 'E_SIZE', `data is ${op.size} bytes, not regionSize ${state.geometry.regionSize}`);
      }
      return null;
    case 'read':
      return regionInRange(state, op.region)
        ? null
        : rejection(state, op, 'E_RANGE', `region outside 0..${regions - 1}`);
    case 'startCycle':
      return state.phase === 'idle' ? null : rejection(state, op, 'E_PHASE', 'a cycle is already running');
    case 'transfer':
      if (!regionInRange(state, op.region)) return rejection(state, op, 'E_RANGE', `region outside 0..${regions - 1}`);
      if (state.phase !== 'replicating') return rejection(state, op, 'E_PHASE', 'no cycle is running');
      if (!inCurrentMap(state, op.region)) return rejection(state, op, 'E_NOT_CURRENT', 'its current-map bit is clear');
      return null;
    case 'completeCycle':
      if (state.phase !== 'replicating') return rejection(state, op, 'E_PHASE', 'no cycle is running');
      if (!everyCurrentRegionSent(state)) {
        return rejection(
          state,
          op,
          'E_NOT_DRAINED',
          'some regions of the current map were not sent since the swap or the last recovery',
        );
      }
      return null;
    default:
      throw new ModelError(`model: unknown operation ${(op as { type: string }).type}`);
  }
}

export type StepResult =
  | { readonly ok: true; readonly state: ModelState }
  | { readonly ok: false; readonly state: ModelState; readonly rejection: Rejection };

/** One operation: its effect, or its rejection with the state unchanged. */
export function step(state: ModelState, op: Op): StepResult {
  const rejected = judge(state, op);
  if (rejected !== null) return { ok: false, state, rejection: rejected };
  switch (op.type) {
    case 'write':
      return { ok: true, state: write(state, op.region, op.data) };
    case 'read':
      return { ok: true, state };
    case 'startCycle':
      return { ok: true, state: swapMaps(state) };
    case 'transfer':
      return { ok: true, state: sendRegion(state, op.region) };
    case 'completeCycle':
      return { ok: true, state: completeCycle(state) };
    case 'crash':
      return { ok: true, state: crash(state) };
    case 'recover':
      return { ok: true, state: recover(state) };
  }
}
