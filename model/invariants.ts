// The invariants of docs/protocol.md section 3 as pure checks that return named violations.
//
// State invariants hold in every state; transition invariants relate a state to
// the one before it and the operation between them. The harness runs both after
// every step, on the model and on the state an implementation reports.

import { everyCurrentRegionSent, step, view } from './rules.ts';
import type { ModelState, Op } from './types.ts';

export type InvariantName =
  | 'INV-COVER'
  | 'INV-SNAPSHOT'
  | 'INV-POINT-IN-TIME'
  | 'INV-CLEAN'
  | 'INV-MINIMAL'
  | 'INV-DURABLE'
  | 'LIVENESS';

export interface Violation {
  readonly invariant: InvariantName;
  readonly region: number | null;
  readonly message: string;
}

function violation(invariant: InvariantName, region: number | null, message: string): Violation {
  return { invariant, region, message };
}

/** INV-COVER, INV-SNAPSHOT and the idle half of INV-CLEAN: true of every state. */
export function checkState(state: ModelState): Violation[] {
  const found: Violation[] = [];
  const regions = state.geometry.regions;
  for (let region = 0; region < regions; region++) {
    if (state.primary[region] !== state.secondary[region] && !state.current[region] && !state.next[region]) {
      found.push(
        violation(
          'INV-COVER',
          region,
          `P[${region}] != S[${region}] but neither C[${region}] nor X[${region}] is set: the update would be lost`,
        ),
      );
    }
  }
  if (state.phase === 'replicating') {
    const atSwap = state.primaryAtSwap;
    if (atSwap === null) {
      found.push(violation('INV-SNAPSHOT', null, 'replicating without a point in time (P@swap)'));
    } else {
      for (let region = 0; region < regions; region++) {
        if (view(state, region) !== atSwap[region]) {
          found.push(
            violation(
              'INV-SNAPSHOT',
              region,
              `view(${region}) differs from P@swap[${region}]: the point-in-time content is lost`,
            ),
          );
        }
      }
    }
  } else {
    for (let region = 0; region < regions; region++) {
      if (state.current[region]) found.push(violation('INV-CLEAN', region, `idle with C[${region}] set`));
      if (state.cow[region] !== null)
        found.push(violation('INV-CLEAN', region, `idle with W[${region}] holding a copy`));
    }
  }
  return found;
}

/**
 * INV-POINT-IN-TIME, the swap half of INV-CLEAN, INV-MINIMAL and INV-DURABLE:
 * true of every accepted operation from `before` to `after`.
 */
export function checkTransition(before: ModelState, op: Op, after: ModelState): Violation[] {
  const found: Violation[] = [];
  const regions = before.geometry.regions;
  if (op.type === 'completeCycle' && before.phase === 'replicating' && after.phase === 'idle') {
    const atSwap = before.primaryAtSwap;
    for (let region = 0; region < regions; region++) {
      if (atSwap === null || after.secondary[region] !== atSwap[region]) {
        found.push(
          violation('INV-POINT-IN-TIME', region, `the cycle completed with S[${region}] != P@swap[${region}]`),
        );
      }
    }
  }
  if (op.type === 'startCycle' && after.phase === 'replicating') {
    for (let region = 0; region < regions; region++) {
      if (after.next[region]) found.push(violation('INV-CLEAN', region, `X[${region}] set right after the swap`));
      if (after.cow[region] !== null)
        found.push(violation('INV-CLEAN', region, `W[${region}] holds a copy right after the swap`));
    }
  }
  for (let region = 0; region < regions; region++) {
    if (before.secondary[region] === after.secondary[region]) continue;
    const sentHere = op.type === 'transfer' && op.region === region && before.current[region] === true;
    if (!sentHere) {
      found.push(
        violation(
          'INV-MINIMAL',
          region,
          `S[${region}] changed by ${op.type} though it was not a transfer of a region in C`,
        ),
      );
    }
  }
  if (op.type === 'recover' || op.type === 'crash') {
    for (let region = 0; region < regions; region++) {
      if (before.primary[region] !== after.primary[region]) {
        found.push(
          violation('INV-DURABLE', region, `P[${region}] changed across ${op.type}: an acknowledged write was lost`),
        );
      }
    }
  }
  return found;
}

/**
 * LIVENESS: with no new writes, at most two complete cycles make S = P with C
 * and X all clear. From a crashed state, recovery comes first; a running cycle
 * is finished (it counts as the first of the two).
 */
export function checkLiveness(start: ModelState): Violation[] {
  let state = start.crashed ? step(start, { type: 'recover' }).state : start;
  const cyclesMax = 2;
  for (let cycle = 0; cycle < cyclesMax; cycle++) {
    if (state.phase === 'idle') state = step(state, { type: 'startCycle' }).state;
    for (let region = 0; region < state.geometry.regions; region++) {
      if (state.current[region]) state = step(state, { type: 'transfer', region }).state;
    }
    if (!everyCurrentRegionSent(state)) break;
    state = step(state, { type: 'completeCycle' }).state;
    if (inStep(state)) return [];
  }
  return [violation('LIVENESS', null, `${cyclesMax} complete cycles with no writes did not bring S in step with P`)];
}

function inStep(state: ModelState): boolean {
  for (let region = 0; region < state.geometry.regions; region++) {
    if (state.primary[region] !== state.secondary[region] || state.current[region] || state.next[region]) return false;
  }
  return true;
}
