// The invariants of docs/protocol.md section 3 as pure checks that return named violations.
//
// State invariants hold in every state; transition invariants relate a state to
// the one before it and the operation between them. The harness runs both after
// every step, on the model and on the state an implementation reports.

import { everyCurrentRegionSent, step, view } from './rules.ts';
import type { StepResult } from './rules.ts';
import type { Content, ModelState, Op } from './types.ts';

/** The rules a check looks ahead with: the real ones, or the ones under test (a planted bug). */
export type StepFunction = (state: ModelState, op: Op) => StepResult;

export type InvariantName =
  | 'INV-COVER'
  | 'INV-SNAPSHOT'
  | 'INV-POINT-IN-TIME'
  | 'INV-CLEAN'
  | 'INV-MINIMAL'
  | 'INV-DURABLE'
  | 'INV-CURRENT'
  | 'INV-VOLATILE'
  | 'INV-DR'
  | 'LIVENESS';

export interface Violation {
  readonly invariant: InvariantName;
  readonly region: number | null;
  readonly message: string;
}

function violation(invariant: InvariantName, region: number | null, message: string): Violation {
  return { invariant, region, message };
}

/** INV-COVER, INV-SNAPSHOT, INV-VOLATILE, the idle half of INV-CLEAN and the state half of INV-DR: true of every state. */
export function checkState(state: ModelState): Violation[] {
  const found: Violation[] = [];
  const regions = state.geometry.regions;
  if (state.crashed) {
    // The sent set is the only volatile state (section 1): a crash loses it, so nothing counts as sent until recovery.
    for (let region = 0; region < regions; region++) {
      if (state.sent[region]) {
        found.push(violation('INV-VOLATILE', region, `crashed with region ${region} still counted as sent`));
      }
    }
  }
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
  found.push(...checkConsistentState(state));
  return found;
}

/**
 * INV-DR in one state (docs/protocol.md section 10): D is the point of the last cycle the
 * far side committed. While idle that cycle is the last completed one, whose point S
 * holds (INV-POINT-IN-TIME), so D = S. While replicating, a region outside C was sent by
 * no cycle since that point and equals it in P@swap too (INV-COVER at the swap), so
 * D[r] = S[r] there; a region of C holds the old point or the running cycle's, which
 * only the transitions tell apart (checkConsistentStep).
 */
function checkConsistentState(state: ModelState): Violation[] {
  const found: Violation[] = [];
  for (let region = 0; region < state.geometry.regions; region++) {
    if (state.consistent[region] === state.secondary[region]) continue;
    if (state.phase === 'replicating' && state.current[region]) continue;
    const where = state.phase === 'idle' ? 'idle' : `replicating with C[${region}] clear`;
    found.push(
      violation('INV-DR', region, `${where} but D[${region}] != S[${region}]: D is not the last point in time`),
    );
  }
  return found;
}

/**
 * INV-DR across a step (docs/protocol.md section 10): only the far side's commit, the
 * first step of completeCycle, changes D, and it makes D the cycle's P@swap whole. After
 * a completed completeCycle D is the new point; after a crash inside one ('crash-outcome')
 * it is the old or the new point, never a mix, and the new one if the primary's
 * completion step became durable (the far side commits first). Any other operation,
 * completed or cut short by a crash, leaves D as it was.
 */
export function checkConsistentStep(
  before: ModelState,
  op: Op,
  after: ModelState,
  mode: 'acknowledged' | 'crash-outcome',
): Violation[] {
  const completing = op.type === 'completeCycle' && before.phase === 'replicating' && !before.crashed;
  if (!completing) {
    if (sameContents(before.consistent, after.consistent)) return [];
    const what = mode === 'acknowledged' ? `${op.type}` : `a crash inside ${op.type}`;
    return [violation('INV-DR', null, `D changed by ${what}: only the far side's commit in completeCycle changes it`)];
  }
  const completed = mode === 'acknowledged' || after.phase === 'idle';
  const atSwap = before.primaryAtSwap;
  if (atSwap !== null && sameContents(atSwap, after.consistent)) return [];
  if (!completed && sameContents(before.consistent, after.consistent)) return [];
  let differing = 0;
  while (differing < after.consistent.length - 1 && after.consistent[differing] === atSwap?.[differing]) differing++;
  const message = completed
    ? `the cycle completed with D[${differing}] != P@swap[${differing}]`
    : 'a crash inside completeCycle left D neither the old point nor the new one';
  return [violation('INV-DR', differing, message)];
}

/** Whether two lists of contents are equal region by region (a plain loop: the explorer calls it millions of times). */
function sameContents(a: readonly Content[], b: readonly Content[]): boolean {
  if (a.length !== b.length) return false;
  for (let region = 0; region < a.length; region++) if (a[region] !== b[region]) return false;
  return true;
}

/**
 * INV-POINT-IN-TIME, the swap half of INV-CLEAN, INV-MINIMAL, INV-DURABLE and
 * INV-CURRENT: true of every accepted operation from `before` to `after`.
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
  found.push(...checkDurable(before, op, after.primary, 'acknowledged'));
  found.push(...checkCurrentFixed(before, op, after));
  found.push(...checkConsistentStep(before, op, after, 'acknowledged'));
  return found;
}

/**
 * The content each region's last acknowledged write left in `P`, after `op` was
 * accepted in `before`. The record of acknowledged writes is kept beside the
 * state: by induction it is `P` of the state before (every step checks it), so
 * only the write acknowledged now changes it.
 */
export function acknowledgedAfter(before: ModelState, op: Op): readonly Content[] {
  if (op.type !== 'write') return before.primary;
  const acknowledged = before.primary.slice();
  acknowledged[op.region] = op.data;
  return acknowledged;
}

/**
 * INV-DURABLE: `P` holds every acknowledged write and nothing else. After an
 * accepted operation (`mode` 'acknowledged') `P` is the record of acknowledged
 * writes exactly; after a crash inside `op` ('crash-outcome') a region that `op`
 * was writing may hold its old or its new content, every other region its record.
 */
export function checkDurable(
  before: ModelState,
  op: Op,
  primary: readonly Content[],
  mode: 'acknowledged' | 'crash-outcome',
): Violation[] {
  const found: Violation[] = [];
  const acknowledged = acknowledgedAfter(before, op);
  for (let region = 0; region < before.geometry.regions; region++) {
    if (primary[region] === acknowledged[region]) continue;
    const unacknowledged = mode === 'crash-outcome' && op.type === 'write' && op.region === region;
    if (unacknowledged && primary[region] === before.primary[region]) continue;
    const what = mode === 'acknowledged' ? `after ${op.type}` : `after a crash inside ${op.type}`;
    found.push(
      violation(
        'INV-DURABLE',
        region,
        `P[${region}] ${what} is not the last acknowledged write to it: an acknowledged write was lost or changed`,
      ),
    );
  }
  return found;
}

/**
 * INV-CURRENT: `C` is fixed at the swap and cleared only when the cycle
 * completes, never bit by bit as regions are sent (section 1). Only startCycle
 * and completeCycle change it.
 */
export function checkCurrentFixed(before: ModelState, op: Op, after: ModelState): Violation[] {
  if (op.type === 'startCycle' || op.type === 'completeCycle') return [];
  const found: Violation[] = [];
  for (let region = 0; region < before.geometry.regions; region++) {
    if (before.current[region] !== after.current[region]) {
      found.push(
        violation('INV-CURRENT', region, `C[${region}] changed by ${op.type}: only the swap and completion change C`),
      );
    }
  }
  return found;
}

/**
 * The checks of a crash inside `op` started in `before`, on one recovered outcome:
 * INV-DURABLE (only the write cut short may have left its old content), INV-CURRENT
 * (C is the one before the operation, unless the swap or completion did it) and
 * INV-DR (D is the one before, unless completion's far-side commit made it the new point).
 */
export function checkCrashOutcome(before: ModelState, op: Op, outcome: ModelState): Violation[] {
  return [
    ...checkDurable(before, op, outcome.primary, 'crash-outcome'),
    ...checkCurrentFixed(before, op, outcome),
    ...checkConsistentStep(before, op, outcome, 'crash-outcome'),
  ];
}

/**
 * LIVENESS: with no new writes, at most two complete cycles make S = P (and D = P:
 * docs/protocol.md section 10) with C and X all clear. From a crashed state, recovery comes first; a running cycle
 * is finished (it counts as the first of the two). It looks ahead with `stepOf`,
 * the rules under test: a broken rule must not hide behind the real ones.
 */
export function checkLiveness(start: ModelState, stepOf: StepFunction = step): Violation[] {
  let state = start.crashed ? stepOf(start, { type: 'recover' }).state : start;
  const cyclesMax = 2;
  for (let cycle = 0; cycle < cyclesMax; cycle++) {
    if (state.phase === 'idle') state = stepOf(state, { type: 'startCycle' }).state;
    for (let region = 0; region < state.geometry.regions; region++) {
      if (state.current[region]) state = stepOf(state, { type: 'transfer', region }).state;
    }
    if (!everyCurrentRegionSent(state)) break;
    state = stepOf(state, { type: 'completeCycle' }).state;
    if (inStep(state)) return [];
  }
  return [violation('LIVENESS', null, `${cyclesMax} complete cycles with no writes did not bring S in step with P`)];
}

function inStep(state: ModelState): boolean {
  for (let region = 0; region < state.geometry.regions; region++) {
    const level =
      state.primary[region] === state.secondary[region] && state.consistent[region] === state.primary[region];
    if (!level || state.current[region] || state.next[region]) return false;
  }
  return true;
}
