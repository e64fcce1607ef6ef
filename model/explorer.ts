// An exhaustive breadth-first search over every reachable model state, checking
// every invariant of docs/protocol.md section 3 in every state and on every transition.
//
// It steps the pure rules (rules.ts) rather than the XState runtime, for speed;
// model/machine.test.ts shows that the two agree on every transition of the
// two-region state space. It is pure: the caller owns the clock and the output.
//
// With crashes it follows a crash between any two operations and, in every
// state, a crash inside every accepted operation: each recovered state that
// docs/protocol.md section 5 allows (model/crashOutcomes.ts), entered crashed,
// so that recovery is the next step. The rules under test (`options.step`) make
// every step, recoveries and LIVENESS's look-ahead included.

import { crashOutcomesUnchecked } from './crashOutcomes.ts';
import { exploreEvents, exploreRegionSize } from './exploreEvents.ts';
import { checkCrashOutcome, checkLiveness, checkState, checkTransition } from './invariants.ts';
import type { StepFunction, Violation } from './invariants.ts';
import * as rules from './rules.ts';
import { StateCodec } from './stateCodec.ts';
import type { Geometry, ModelState, Op } from './types.ts';

export interface ExploreOptions {
  readonly regions: number;
  readonly values: number;
  readonly crash: boolean;
  /** With crash on, also follow every crash outcome inside every operation (docs/protocol.md section 5); default true. */
  readonly crashInside?: boolean;
  readonly statesMax: number;
  /**
   * Model the far side's consistent image D as a state variable of its own
   * (docs/protocol.md section 10); default false: D is taken as S in every state
   * reached (model/stateCodec.ts), which keeps the state space of a secondary updated
   * in place, and INV-DR is checked on each step only.
   */
  readonly consistent?: boolean;
  /** The rules to explore; a test plants a broken rule here. */
  readonly step?: StepFunction;
  /** Called every `progressEvery` states with the counts so far. */
  readonly onProgress?: (progress: ExploreProgress) => void;
  readonly progressEvery?: number;
}

export interface ExploreProgress {
  readonly states: number;
  readonly transitions: number;
  readonly depth: number;
  readonly frontier: number;
}

export interface ExploreViolation {
  /** The shortest path of operations that reaches it. */
  readonly path: readonly Op[];
  /**
   * Parallel to `path`: null for an operation that completed; where a crash struck
   * inside the operation, the index of the outcome followed (in the order of
   * crashOutcomesUnchecked), after which the volume is crashed until `recover`.
   */
  readonly crashInside: readonly (number | null)[];
  readonly violations: readonly Violation[];
}

export interface ExploreResult {
  readonly states: number;
  readonly transitions: number;
  /** Operations rejected (checked to change nothing), not counted as transitions. */
  readonly rejections: number;
  /** Crash outcomes followed inside operations (with crash on), not counted as transitions. */
  readonly crashOutcomes: number;
  readonly depthMax: number;
  /** True when `statesMax` stopped the search before the state space was done. */
  readonly stoppedEarly: boolean;
  readonly geometry: Geometry;
  /** The first violation found, with the shortest path that reaches it. */
  readonly violation: ExploreViolation | null;
}

export const exploreValuesMax = 8;
export const exploreRegionsMax = 8;

function grown(array: Int32Array<ArrayBuffer>, length: number): Int32Array<ArrayBuffer> {
  if (length <= array.length) return array;
  const bigger = new Int32Array(Math.max(length, array.length * 2));
  bigger.set(array);
  return bigger;
}

/** An edge of the search: an operation of `events`, or a crash inside one leaving an outcome (then the state is crashed). */
interface Edge {
  readonly eventIndex: number;
  readonly outcome: number | null;
}

/** The states found so far, numbered in BFS order, with the edge each was first reached by. */
class Visited {
  readonly numberOf = new Map<number, number>();
  readonly keys: number[] = [];
  private parent = new Int32Array(1024);
  /** The event index, plus events.length times (1 + the outcome's index) for a crash inside it. */
  private via = new Int32Array(1024);
  depth = new Int32Array(1024);

  constructor(private readonly events: readonly Op[]) {}

  add(key: number, from: number, edge: Edge | null): number {
    const number = this.keys.length;
    this.numberOf.set(key, number);
    this.keys.push(key);
    this.parent = grown(this.parent, number + 1);
    this.via = grown(this.via, number + 1);
    this.depth = grown(this.depth, number + 1);
    if (edge !== null) {
      this.parent[number] = from;
      this.via[number] = edge.eventIndex + (edge.outcome === null ? 0 : (edge.outcome + 1) * this.events.length);
      this.depth[number] = this.depth[from]! + 1;
    }
    return number;
  }

  pathTo(stateNumber: number, extra: Edge | null): { path: Op[]; crashInside: (number | null)[] } {
    const edges: Edge[] = extra === null ? [] : [extra];
    let at = stateNumber;
    for (let guard = 0; at > 0; guard++) {
      if (guard > this.keys.length) throw new Error('explore: a cycle in the parent links');
      const via = this.via[at]!;
      const count = this.events.length;
      edges.push({ eventIndex: via % count, outcome: via < count ? null : Math.floor(via / count) - 1 });
      at = this.parent[at]!;
    }
    edges.reverse();
    return { path: edges.map((edge) => this.events[edge.eventIndex]!), crashInside: edges.map((e) => e.outcome) };
  }
}

interface Counts {
  transitions: number;
  rejections: number;
  crashOutcomes: number;
  stoppedEarly: boolean;
}

/** One search: the options, the visited states, the counts; `expand` steps one state. */
class Search {
  readonly geometry: Geometry;
  readonly codec: StateCodec;
  readonly events: readonly Op[];
  readonly stepOf: StepFunction;
  readonly crashInside: boolean;
  readonly visited: Visited;
  readonly counts: Counts = { transitions: 0, rejections: 0, crashOutcomes: 0, stoppedEarly: false };

  constructor(readonly options: ExploreOptions) {
    this.geometry = { regions: options.regions, regionSize: exploreRegionSize };
    this.stepOf = options.step ?? rules.step;
    this.crashInside = options.crash && (options.crashInside ?? true);
    this.codec = new StateCodec(this.geometry, options.values, options.consistent ?? false);
    this.events = exploreEvents(options.regions, options.values, options.crash);
    this.visited = new Visited(this.events);
  }

  result(violation: ExploreViolation | null): ExploreResult {
    const { transitions, rejections, crashOutcomes, stoppedEarly } = this.counts;
    const depthMax = this.visited.depth[this.visited.keys.length - 1]!;
    return {
      states: this.visited.keys.length,
      transitions,
      rejections,
      crashOutcomes,
      depthMax,
      stoppedEarly,
      geometry: this.geometry,
      violation,
    };
  }

  failure(at: number, extra: Edge | null, violations: readonly Violation[]): ExploreResult {
    return this.result({ ...this.visited.pathTo(at, extra), violations });
  }

  /** A new state's own checks (state invariants, LIVENESS under the rules under test). */
  private stateViolations(state: ModelState): Violation[] {
    return [...checkState(state), ...checkLiveness(state, this.stepOf)];
  }

  start(): ExploreResult | null {
    const initial = rules.initialState(this.geometry, '');
    this.visited.add(this.codec.encode(initial), 0, null);
    const violations = this.stateViolations(initial);
    return violations.length > 0 ? this.failure(0, null, violations) : null;
  }

  /** Records a state reached from `cursor`; a violation of a new state ends the search. */
  private reached(state: ModelState, cursor: number, edge: Edge): ExploreResult | null {
    const key = this.codec.encode(state);
    if (this.visited.numberOf.has(key)) return null;
    if (this.visited.keys.length >= this.options.statesMax) {
      this.counts.stoppedEarly = true;
      return null;
    }
    const number = this.visited.add(key, cursor, edge);
    const violations = this.stateViolations(state);
    if (violations.length > 0) return this.failure(number, null, violations);
    const progressEvery = this.options.progressEvery ?? 100_000;
    if (this.options.onProgress !== undefined && number % progressEvery === 0) {
      const frontier = this.visited.keys.length - cursor;
      this.options.onProgress({
        states: number + 1,
        transitions: this.counts.transitions,
        depth: this.visited.depth[number]!,
        frontier,
      });
    }
    return null;
  }

  /** Every operation in the state numbered `cursor`, then (crash on) a crash inside each accepted one. */
  expand(cursor: number): ExploreResult | null {
    const state = this.codec.decode(this.visited.keys[cursor]!);
    for (let eventIndex = 0; eventIndex < this.events.length; eventIndex++) {
      const op = this.events[eventIndex]!;
      // A crash with nothing running is the identity: it is not a transition to explore.
      if (op.type === 'crash' && state.crashed) continue;
      const result = this.stepOf(state, op);
      const edge: Edge = { eventIndex, outcome: null };
      if (!result.ok) {
        this.counts.rejections++;
        if (this.codec.encode(result.state) === this.visited.keys[cursor]) continue;
        const message = `a rejected ${op.type} changed the state`;
        return this.failure(cursor, edge, [{ invariant: 'INV-MINIMAL', region: null, message }]);
      }
      this.counts.transitions++;
      const transitionViolations = checkTransition(state, op, result.state);
      if (transitionViolations.length > 0) return this.failure(cursor, edge, transitionViolations);
      const found = this.reached(result.state, cursor, edge);
      if (found !== null) return found;
      if (this.crashInside && !state.crashed && op.type !== 'crash' && op.type !== 'recover') {
        const inside = this.followCrashOutcomes(state, cursor, eventIndex);
        if (inside !== null) return inside;
      }
    }
    return null;
  }

  /**
   * A crash inside the accepted operation `eventIndex`: every recovered state
   * section 5 allows, checked against the state before (INV-DURABLE, INV-CURRENT),
   * entered crashed so that the rules under test recover it.
   */
  private followCrashOutcomes(state: ModelState, cursor: number, eventIndex: number): ExploreResult | null {
    const op = this.events[eventIndex]!;
    const outcomes = crashOutcomesUnchecked(state, op, { torn: false });
    for (let index = 0; index < outcomes.length; index++) {
      const outcome = outcomes[index]!;
      const edge: Edge = { eventIndex, outcome: index };
      this.counts.crashOutcomes++;
      const violations = checkCrashOutcome(state, op, outcome.state);
      if (violations.length > 0) return this.failure(cursor, edge, violations);
      const found = this.reached({ ...outcome.state, crashed: true }, cursor, edge);
      if (found !== null) return found;
    }
    return null;
  }
}

export function explore(options: ExploreOptions): ExploreResult {
  if (!Number.isInteger(options.regions) || options.regions < 1 || options.regions > exploreRegionsMax) {
    throw new RangeError(`explore: regions must be 1..${exploreRegionsMax}`);
  }
  if (!Number.isInteger(options.values) || options.values < 1 || options.values > exploreValuesMax) {
    throw new RangeError(`explore: values must be 1..${exploreValuesMax}`);
  }
  const search = new Search(options);
  const initialFailure = search.start();
  if (initialFailure !== null) return initialFailure;
  // BFS order is the numbering order: state i is expanded when the cursor reaches i.
  for (let cursor = 0; cursor < search.visited.keys.length; cursor++) {
    const failure = search.expand(cursor);
    if (failure !== null) return failure;
  }
  return search.result(null);
}
