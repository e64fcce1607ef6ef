// The statechart and the pure rules must agree: on every transition of a small
// state space, the statechart's verdict (accepted or the rejection's code), its
// resulting context and the state it ends in must be the rules' result. The
// explorer steps the rules for speed, so this agreement is what lets it speak for
// the statechart. Either side can be replaced by a broken one (a planted bug).

import type { AnyMachineSnapshot } from 'xstate';
import { crashOutcomesUnchecked } from './crashOutcomes.ts';
import { exploreEvents, exploreRegionSize } from './exploreEvents.ts';
import type { StepFunction } from './invariants.ts';
import * as rules from './rules.ts';
import { modelStatechart, stateValueOf } from './transitions.ts';
import type { ModelSnapshot, Statechart } from './transitions.ts';
import type { ModelState, Op } from './types.ts';

export interface Disagreement {
  readonly what: 'result' | 'context' | 'state value';
  readonly op: Op;
  readonly before: string;
  readonly byRules: string;
  readonly byStatechart: string;
}

export interface AgreementOptions<Snapshot extends AnyMachineSnapshot = ModelSnapshot> {
  readonly regions: number;
  readonly values: number;
  /** Operations tried beside the explorer's (reads, rejections the explorer never makes). */
  readonly extraEvents?: readonly Op[];
  readonly step?: StepFunction;
  /** The statechart under test (default: the model's); a test plants a broken one here. */
  readonly statechart?: Statechart<Snapshot>;
  readonly statesMax: number;
  /** Stop after this many disagreements. */
  readonly disagreementsMax?: number;
}

export interface AgreementResult {
  readonly states: number;
  readonly transitions: number;
  readonly covered: ReadonlySet<string>;
  readonly disagreements: readonly Disagreement[];
}

/** Everything of a model state, as one comparable string (`withConsistent` false: all but D). */
export function stateKey(state: ModelState, withConsistent = true): string {
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
    withConsistent ? state.consistent : null,
  ]);
}

/** The ways the statechart's step from `state` differs from the rules' step. */
function compareStep(state: ModelState, op: Op, byRules: rules.StepResult, after: AnyMachineSnapshot): Disagreement[] {
  const found: Disagreement[] = [];
  const before = stateKey(state);
  const rejection = (after.context as { rejection: { code: string } | null }).rejection;
  const resultByChart = rejection?.code ?? 'ok';
  const resultByRules = byRules.ok ? 'ok' : byRules.rejection.code;
  if (resultByChart !== resultByRules) {
    found.push({ what: 'result', op, before, byRules: resultByRules, byStatechart: resultByChart });
  }
  // The context is the model state plus the last rejection, which stateKey leaves out.
  const contextByChart = stateKey(after.context as ModelState);
  const contextByRules = stateKey(byRules.state);
  if (contextByChart !== contextByRules) {
    found.push({ what: 'context', op, before, byRules: contextByRules, byStatechart: contextByChart });
  }
  const valueByChart = JSON.stringify(after.value);
  const valueByRules = JSON.stringify(stateValueOf(byRules.state));
  if (valueByChart !== valueByRules) {
    found.push({ what: 'state value', op, before, byRules: valueByRules, byStatechart: valueByChart });
  }
  return found;
}

/**
 * Breadth first over the states the rules reach with the explorer's operations
 * (crash and recover included) and `extraEvents`, and, as the explorer does, the
 * crashed states that a crash inside each accepted operation may leave
 * (docs/protocol.md section 5): every operation in every state on both sides,
 * compared. The oracle drives the statechart from such states too.
 */
export function checkAgreement<Snapshot extends AnyMachineSnapshot = ModelSnapshot>(
  options: AgreementOptions<Snapshot>,
): AgreementResult {
  const stepOf = options.step ?? rules.step;
  const chart = options.statechart ?? (modelStatechart as unknown as Statechart<Snapshot>);
  const events = [...exploreEvents(options.regions, options.values, true), ...(options.extraEvents ?? [])];
  const disagreementsMax = options.disagreementsMax ?? 10;
  const start = rules.initialState({ regions: options.regions, regionSize: exploreRegionSize }, '');
  // States are told apart without D: every rule treats D alike whatever it holds (only the
  // far side's commit sets it, from S), so states that differ in D alone take the same
  // transitions; each step's context is still compared with D (compareStep).
  const seen = new Set<string>([stateKey(start, false)]);
  const queue: ModelState[] = [start];
  const covered = new Set<string>();
  const disagreements: Disagreement[] = [];
  let transitions = 0;
  for (let cursor = 0; cursor < queue.length && disagreements.length < disagreementsMax; cursor++) {
    const state = queue[cursor]!;
    const snapshot = chart.snapshotOf(state);
    for (const op of events) {
      const byRules = stepOf(state, op);
      const { snapshot: after, taken } = chart.step(snapshot, op);
      for (const id of taken) covered.add(id);
      transitions++;
      disagreements.push(...compareStep(state, op, byRules, after));
      const next = [byRules.state];
      if (byRules.ok && !state.crashed && op.type !== 'crash' && op.type !== 'recover') {
        for (const outcome of crashOutcomesUnchecked(state, op, { torn: false }))
          next.push({ ...outcome.state, crashed: true });
      }
      for (const reached of next) {
        const key = stateKey(reached, false);
        if (seen.has(key) || seen.size >= options.statesMax) continue;
        seen.add(key);
        queue.push(reached);
      }
    }
  }
  return { states: seen.size, transitions, covered, disagreements: disagreements.slice(0, disagreementsMax) };
}
