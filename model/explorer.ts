// An exhaustive breadth-first search over every reachable model state, checking
// every invariant of docs/protocol.md section 3 in every state and on every transition.
//
// It steps the pure rules (rules.ts) rather than the XState runtime, for speed;
// model/explorer.test.ts shows that the two agree on every transition of the
// two-region state space. It is pure: the caller owns the clock and the output.
//
// Contents are labels: region A written with value 1 holds `A1`; the initial
// zero content is the empty label. Contents never move between regions, so one
// label set per region gives the same state space as one shared set.

import { checkLiveness, checkState, checkTransition } from './invariants.ts';
import type { Violation } from './invariants.ts';
import * as rules from './rules.ts';
import type { Content, Geometry, ModelState, Op } from './types.ts';

export type StepFunction = (state: ModelState, op: Op) => rules.StepResult;

export interface ExploreOptions {
  readonly regions: number;
  readonly values: number;
  readonly crash: boolean;
  readonly statesMax: number;
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

export interface ExploreResult {
  readonly states: number;
  readonly transitions: number;
  /** Operations rejected (checked to change nothing), not counted as transitions. */
  readonly rejections: number;
  readonly depthMax: number;
  /** True when `statesMax` stopped the search before the state space was done. */
  readonly stoppedEarly: boolean;
  readonly geometry: Geometry;
  /** The first violation found, with the shortest path of operations that reaches it. */
  readonly violation: { readonly path: readonly Op[]; readonly violations: readonly Violation[] } | null;
}

export const exploreRegionSize = 512;
export const exploreValuesMax = 8;
export const exploreRegionsMax = 8;

export function regionName(region: number, regions: number): string {
  return regions <= 26 ? String.fromCharCode(65 + region) : String(region);
}

export function valueLabel(region: number, value: number, regions: number): Content {
  return `${regionName(region, regions)}${value}`;
}

/** The operations tried in every state, in a fixed order (so the shortest path is deterministic). */
export function exploreEvents(regions: number, values: number, crash: boolean): Op[] {
  const events: Op[] = [];
  for (let region = 0; region < regions; region++) {
    for (let value = 1; value <= values; value++) {
      events.push({ type: 'write', region, data: valueLabel(region, value, regions), size: exploreRegionSize });
    }
  }
  events.push({ type: 'startCycle' });
  for (let region = 0; region < regions; region++) events.push({ type: 'transfer', region });
  events.push({ type: 'completeCycle' });
  if (crash) events.push({ type: 'crash' }, { type: 'recover' });
  return events;
}

/**
 * Packs a state into one number (mixed radix, per region: P, S, C, X, W, sent,
 * P@swap; then phase and crashed). The explorer's bounds keep it below 2^53.
 */
class StateCodec {
  private readonly contentIndex: Map<Content, number>[] = [];
  private readonly contents: Content[][] = [];
  private readonly valueRadix: number;
  private readonly regionRadix: number;

  constructor(
    readonly geometry: Geometry,
    values: number,
  ) {
    this.valueRadix = values + 1;
    this.regionRadix = this.valueRadix ** 3 * 2 * 2 * 2 * (this.valueRadix + 1);
    if (this.regionRadix ** geometry.regions * 4 > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`explore: ${geometry.regions} regions of ${values} values do not fit a state key`);
    }
    for (let region = 0; region < geometry.regions; region++) {
      const labels = [''];
      for (let value = 1; value <= values; value++) labels.push(valueLabel(region, value, geometry.regions));
      this.contents.push(labels);
      this.contentIndex.push(new Map(labels.map((label, index) => [label, index])));
    }
  }

  private index(region: number, content: Content): number {
    const found = this.contentIndex[region]!.get(content);
    if (found === undefined)
      throw new Error(`explore: region ${region} holds content '${content}' that no event writes`);
    return found;
  }

  encode(state: ModelState): number {
    let key = 0;
    const v = this.valueRadix;
    for (let region = this.geometry.regions - 1; region >= 0; region--) {
      const cow = state.cow[region]!;
      const atSwap = state.primaryAtSwap === null ? 0 : this.index(region, state.primaryAtSwap[region]!);
      let digit = this.index(region, state.primary[region]!);
      digit = digit * v + this.index(region, state.secondary[region]!);
      digit = digit * 2 + (state.current[region] ? 1 : 0);
      digit = digit * 2 + (state.next[region] ? 1 : 0);
      digit = digit * (v + 1) + (cow === null ? 0 : this.index(region, cow) + 1);
      digit = digit * 2 + (state.sent[region] ? 1 : 0);
      digit = digit * v + atSwap;
      key = key * this.regionRadix + digit;
    }
    return (key * 2 + (state.phase === 'replicating' ? 1 : 0)) * 2 + (state.crashed ? 1 : 0);
  }

  decode(key: number): ModelState {
    const regions = this.geometry.regions;
    const v = this.valueRadix;
    const crashed = key % 2 === 1;
    key = Math.floor(key / 2);
    const phase = key % 2 === 1 ? 'replicating' : 'idle';
    key = Math.floor(key / 2);
    const primary: Content[] = [];
    const secondary: Content[] = [];
    const current: boolean[] = [];
    const next: boolean[] = [];
    const cow: (Content | null)[] = [];
    const sent: boolean[] = [];
    const atSwap: Content[] = [];
    for (let region = 0; region < regions; region++) {
      let digit = key % this.regionRadix;
      key = Math.floor(key / this.regionRadix);
      const labels = this.contents[region]!;
      atSwap.push(labels[digit % v]!);
      digit = Math.floor(digit / v);
      sent.push(digit % 2 === 1);
      digit = Math.floor(digit / 2);
      const cowDigit = digit % (v + 1);
      cow.push(cowDigit === 0 ? null : labels[cowDigit - 1]!);
      digit = Math.floor(digit / (v + 1));
      next.push(digit % 2 === 1);
      digit = Math.floor(digit / 2);
      current.push(digit % 2 === 1);
      digit = Math.floor(digit / 2);
      secondary.push(labels[digit % v]!);
      primary.push(labels[Math.floor(digit / v)]!);
    }
    return {
      geometry: this.geometry,
      phase,
      crashed,
      primary,
      secondary,
      current,
      next,
      cow,
      sent,
      primaryAtSwap: phase === 'idle' ? null : atSwap,
    };
  }
}

function pathTo(stateNumber: number, parent: Int32Array, via: Int32Array, events: readonly Op[]): Op[] {
  const path: Op[] = [];
  let at = stateNumber;
  for (let guard = 0; at > 0; guard++) {
    if (guard > parent.length) throw new Error('explore: a cycle in the parent links');
    path.push(events[via[at]!]!);
    at = parent[at]!;
  }
  return path.reverse();
}

function grown(array: Int32Array<ArrayBuffer>, length: number): Int32Array<ArrayBuffer> {
  if (length <= array.length) return array;
  const bigger = new Int32Array(Math.max(length, array.length * 2));
  bigger.set(array);
  return bigger;
}

export function explore(options: ExploreOptions): ExploreResult {
  if (!Number.isInteger(options.regions) || options.regions < 1 || options.regions > exploreRegionsMax) {
    throw new RangeError(`explore: regions must be 1..${exploreRegionsMax}`);
  }
  if (!Number.isInteger(options.values) || options.values < 1 || options.values > exploreValuesMax) {
    throw new RangeError(`explore: values must be 1..${exploreValuesMax}`);
  }
  const geometry: Geometry = { regions: options.regions, regionSize: exploreRegionSize };
  const stepOf = options.step ?? rules.step;
  const codec = new StateCodec(geometry, options.values);
  const events = exploreEvents(options.regions, options.values, options.crash);
  const progressEvery = options.progressEvery ?? 100_000;

  const numberOf = new Map<number, number>();
  const keys: number[] = [];
  let parent = new Int32Array(1024);
  let via = new Int32Array(1024);
  let depth = new Int32Array(1024);
  let transitions = 0;
  let rejections = 0;
  let stoppedEarly = false;

  const initial = rules.initialState(geometry, '');
  const initialKey = codec.encode(initial);
  numberOf.set(initialKey, 0);
  keys.push(initialKey);
  const failure = (at: number, extra: Op | null, violations: Violation[]) => ({
    states: keys.length,
    transitions,
    rejections,
    depthMax: depth[keys.length - 1]!,
    stoppedEarly: false,
    geometry,
    violation: {
      path: extra === null ? pathTo(at, parent, via, events) : [...pathTo(at, parent, via, events), extra],
      violations,
    },
  });
  const initialViolations = [...checkState(initial), ...checkLiveness(initial)];
  if (initialViolations.length > 0) return failure(0, null, initialViolations);

  // BFS order is the numbering order: state i is expanded when the cursor reaches i.
  for (let cursor = 0; cursor < keys.length; cursor++) {
    const state = codec.decode(keys[cursor]!);
    for (let eventIndex = 0; eventIndex < events.length; eventIndex++) {
      const op = events[eventIndex]!;
      // A crash with nothing running is the identity: it is not a transition to explore.
      if (op.type === 'crash' && state.crashed) continue;
      const result = stepOf(state, op);
      if (!result.ok) {
        rejections++;
        if (codec.encode(result.state) !== keys[cursor]) {
          return failure(cursor, op, [
            { invariant: 'INV-MINIMAL', region: null, message: `a rejected ${op.type} changed the state` },
          ]);
        }
        continue;
      }
      transitions++;
      const transitionViolations = checkTransition(state, op, result.state);
      if (transitionViolations.length > 0) return failure(cursor, op, transitionViolations);
      const key = codec.encode(result.state);
      if (numberOf.has(key)) continue;
      if (keys.length >= options.statesMax) {
        stoppedEarly = true;
        continue;
      }
      const number = keys.length;
      numberOf.set(key, number);
      keys.push(key);
      parent = grown(parent, number + 1);
      via = grown(via, number + 1);
      depth = grown(depth, number + 1);
      parent[number] = cursor;
      via[number] = eventIndex;
      depth[number] = depth[cursor]! + 1;
      const stateViolations = [...checkState(result.state), ...checkLiveness(result.state)];
      if (stateViolations.length > 0) return failure(number, null, stateViolations);
      if (options.onProgress !== undefined && number % progressEvery === 0) {
        options.onProgress({ states: keys.length, transitions, depth: depth[number]!, frontier: keys.length - cursor });
      }
    }
  }
  return {
    states: keys.length,
    transitions,
    rejections,
    depthMax: depth[keys.length - 1]!,
    stoppedEarly,
    geometry,
    violation: null,
  };
}
