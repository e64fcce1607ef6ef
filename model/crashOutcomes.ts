// The crash outcomes of docs/protocol.md section 5 as a pure function: given the state
// before an operation and the operation a crash interrupted, the recovered states
// a correct implementation may show.
//
// A write is a sequence of durable steps in a documented order: the COW copy, the
// next bit, then the data (docs/protocol.md section 5 and docs/protocol.md). So before the
// data lands, the copy and the bit may or may not be there, in any combination;
// once the data has landed (even torn), both are. A new P[r] with X[r] clear would
// be lost by the next cycle; a new P[r] without its preserved copy would lose the
// point in time. Those are not allowed, although each keeps every invariant at the
// instant of recovery.
//
// A crash inside completeCycle may strike between the far side's commit of the cycle
// and the primary's durable completion step: the cycle is still running, but the
// consistent image D is already its point in time (docs/protocol.md section 10). No
// other crash changes D.
//
// In the torn model, a region write that was cut short may leave any sector-wise
// mix of its old and new bytes. The model does not see bytes, so such an outcome
// names the two contents and the harness checks the bytes (`isSectorMix`).

import { checkState } from './invariants.ts';
import { ModelError } from './modelError.ts';
import * as rules from './rules.ts';
import type { Content, ModelState, Op, Phase } from './types.ts';

export interface CrashOptions {
  /** The torn model: unsynced sector writes may be torn (docs/protocol.md section 5, rule 3). */
  readonly torn: boolean;
}

export interface Mix {
  readonly volume: 'primary' | 'secondary';
  readonly region: number;
  readonly old: Content;
  readonly new: Content;
}

export interface CrashOutcome {
  /** The recovered state (not crashed, nothing sent). */
  readonly state: ModelState;
  /** Torn model: `state[volume][region]` may also be any sector-wise mix of old and new. */
  readonly mix: Mix | null;
}

/** The state an implementation reports (docs/protocol.md section 6), as the model sees it. */
export interface ObservedState {
  readonly phase: Phase;
  readonly current: readonly boolean[];
  readonly next: readonly boolean[];
  readonly cow: readonly (Content | null)[];
  readonly primary: readonly Content[];
  readonly secondary: readonly Content[];
  /** D, when the implementation keeps a consistent image (feature `consistent`, docs/protocol.md section 10). */
  readonly consistent?: readonly Content[] | undefined;
}

function recovered(state: ModelState): ModelState {
  return rules.recover(rules.crash(state));
}

function keyOf(outcome: CrashOutcome): string {
  const s = outcome.state;
  return JSON.stringify([s.phase, s.primary, s.secondary, s.current, s.next, s.cow, s.consistent, outcome.mix]);
}

function writeOutcomes(before: ModelState, region: number, data: Content, options: CrashOptions): CrashOutcome[] {
  const preserves = rules.firstWriteThisCycle(before, region);
  const outcomes: CrashOutcome[] = [];
  // The data has not landed: any prefix of {COW copy, next bit}.
  for (const withCopy of preserves ? [false, true] : [false]) {
    for (const withBit of [false, true]) {
      let state = withCopy ? rules.preserveRegion(before, region) : before;
      state = withBit ? rules.markNext(state, region) : state;
      outcomes.push({ state, mix: null });
    }
  }
  // The data has landed, whole or (torn) in part: the copy and the bit are durable.
  const after = rules.write(before, region, data);
  const old = before.primary[region]!;
  const mix: Mix | null = options.torn && old !== data ? { volume: 'primary', region, old, new: data } : null;
  outcomes.push({ state: after, mix });
  return outcomes;
}

/**
 * The recovered states allowed after a crash inside `op`, started in `before`.
 * A crash between operations is `op = { type: 'crash' }`: exactly the state.
 * Each outcome keeps every state invariant (the model asserts it).
 */
export function crashOutcomes(before: ModelState, op: Op, options: CrashOptions): CrashOutcome[] {
  const unique = new Map<string, CrashOutcome>();
  for (const outcome of crashOutcomesUnchecked(before, op, options)) unique.set(keyOf(outcome), outcome);
  const outcomes = [...unique.values()];
  for (const outcome of outcomes) {
    const violations = checkState(outcome.state);
    if (violations.length > 0) {
      throw new ModelError(
        `model: a crash outcome of ${op.type} breaks ${violations[0]!.invariant}: ${violations[0]!.message}`,
      );
    }
  }
  return outcomes;
}

/**
 * The same outcomes, neither checked nor deduplicated (one may repeat): the
 * explorer, which calls it millions of times, deduplicates by its own state key
 * and checks each outcome itself, reporting a broken one with its path.
 */
export function crashOutcomesUnchecked(before: ModelState, op: Op, options: CrashOptions): CrashOutcome[] {
  let outcomes: CrashOutcome[];
  const rejected = rules.judge(before, op) !== null;
  if (before.crashed) {
    // A crash inside recovery: recovery starts over from the same durable state.
    outcomes = [{ state: before, mix: null }];
  } else if (rejected) {
    outcomes = [{ state: before, mix: null }];
  } else {
    switch (op.type) {
      case 'write':
        outcomes = writeOutcomes(before, op.region, op.data, options);
        break;
      case 'startCycle':
        outcomes = [
          { state: before, mix: null },
          { state: rules.swapMaps(before), mix: null },
        ];
        break;
      case 'completeCycle':
        // The far side commits first (D := S), then the primary's durable step: a crash
        // between the two leaves the cycle running with D already the new point
        // (docs/protocol.md section 10).
        outcomes = [
          { state: before, mix: null },
          { state: rules.commitFarSide(before), mix: null },
          { state: rules.completeCycle(before), mix: null },
        ];
        break;
      case 'transfer': {
        const after = rules.sendRegion(before, op.region);
        const old = before.secondary[op.region]!;
        const sentContent = after.secondary[op.region]!;
        const mix: Mix | null =
          options.torn && old !== sentContent
            ? { volume: 'secondary', region: op.region, old, new: sentContent }
            : null;
        outcomes = [
          { state: before, mix: null },
          { state: after, mix },
        ];
        break;
      }
      case 'read':
      case 'crash':
      case 'recover':
        outcomes = [{ state: before, mix: null }];
        break;
    }
  }
  return outcomes.map((outcome) => ({ state: recovered(outcome.state), mix: outcome.mix }));
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

/**
 * The allowed outcome that an implementation's recovered state shows, as the model
 * state to continue from, or null when the state is not allowed. `isSectorMix`
 * tells whether `observed` content is a sector-wise mix of `old` and `new`.
 */
export function matchOutcome(
  outcomes: readonly CrashOutcome[],
  observed: ObservedState,
  isSectorMix: (old: Content, next: Content, observed: Content) => boolean,
): ModelState | null {
  for (const { state, mix } of outcomes) {
    if (state.phase !== observed.phase) continue;
    if (
      !sameList(state.current, observed.current) ||
      !sameList(state.next, observed.next) ||
      !sameList(state.cow, observed.cow)
    )
      continue;
    if (observed.consistent !== undefined && !sameList(state.consistent, observed.consistent)) continue;
    let primary = state.primary;
    let secondary = state.secondary;
    if (mix !== null) {
      const seen = observed[mix.volume][mix.region]!;
      if (seen !== mix.old && seen !== mix.new && isSectorMix(mix.old, mix.new, seen)) {
        if (mix.volume === 'primary')
          primary = primary.map((content, region) => (region === mix.region ? seen : content));
        else secondary = secondary.map((content, region) => (region === mix.region ? seen : content));
      }
    }
    if (!sameList(primary, observed.primary) || !sameList(secondary, observed.secondary)) continue;
    if (primary === state.primary && secondary === state.secondary) return state;
    const continued: ModelState = { ...state, primary, secondary };
    // A torn region continues as content of its own. It must still keep the invariants.
    if (checkState(continued).length > 0) continue;
    return continued;
  }
  return null;
}
