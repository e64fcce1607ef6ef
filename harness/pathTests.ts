// Path tests from the statechart: `createTestModel` from xstate/graph (where the
// @xstate/test API lives for XState 5) generates paths over a bounded event set,
// and each path runs against a fresh volume through the oracle.
//
// Shortest paths reach every distinct state of the bounded model (a state
// includes the code of the last rejection); where a transition ends no such path
// (a read, a second rejection with the same code), the shortest path to its
// source plus its event is added, so every transition is taken. Simple paths of
// the one-region model add longer walks through the same states.

import { initialTransition } from 'xstate';
import { createTestModel } from 'xstate/graph';
import { exploreEvents, valueLabel } from '../model/explorer.ts';
import { replicationMachine } from '../model/machine.ts';
import { stepMachine } from '../model/transitions.ts';
import type { ModelSnapshot } from '../model/transitions.ts';
import type { Geometry, Op } from '../model/types.ts';
import { runScenario } from './scenario.ts';
import type { ScenarioResult, ScenarioStep } from './scenario.ts';
import type { SystemUnderTest } from './sut.ts';
import { ContentBook } from './trace/content.ts';

export interface PathOptions {
  readonly regions: number;
  readonly values: number;
  readonly crash: boolean;
  readonly regionSize: number;
  /**
   * The volume the paths run on: the model's few regions are mapped onto regions
   * across it, boundaries first, and writes carry full-region bytes of its
   * regionSize (default: a volume of exactly the model's regions and regionSize).
   */
  readonly volume?: Geometry;
  /** Picks the mapping of model regions onto the volume and the bytes written (default 0). */
  readonly seed?: number;
}

/** The events of the bounded model: the explorer's, plus reads and out-of-range and wrong-size requests. */
export function pathEvents(options: PathOptions): Op[] {
  const last = options.regions;
  return [
    ...exploreEvents(options.regions, options.values, options.crash).map((op) => (op.type === 'write' ? { ...op, size: options.regionSize } : op)),
    { type: 'read', region: 0, volume: 'primary' },
    { type: 'read', region: last - 1, volume: 'secondary' },
    { type: 'read', region: last, volume: 'primary' },
    { type: 'write', region: last, data: valueLabel(0, 1, options.regions), size: options.regionSize },
    { type: 'write', region: 0, data: valueLabel(0, 1, options.regions), size: options.regionSize - 1 },
    { type: 'transfer', region: last },
  ];
}

/**
 * XState's traversal of a machine adds a bare `{ type }` for every event a state
 * accepts that the given list lacks (crash and recover, say); keep only the
 * event types of the list, so that "without crashes" means without.
 */
function onlyTypesOf(events: readonly Op[]): (snapshot: ModelSnapshot, event: Op) => boolean {
  const types = new Set(events.map((event) => event.type));
  return (_snapshot, event) => types.has(event.type);
}

/** A path's events, without XState's own init event. */
function eventsOf(path: { steps: readonly { event: { type: string } }[] }): Op[] {
  return path.steps.filter((step) => !step.event.type.startsWith('xstate.')).map((step) => step.event as Op);
}

function serializeSnapshot(snapshot: ModelSnapshot): string {
  const c = snapshot.context;
  return JSON.stringify([snapshot.value, c.primary, c.secondary, c.current, c.next, c.cow, c.sent, c.primaryAtSwap, c.rejection?.code ?? null]);
}

/** Shortest paths that together take every transition of the bounded model. */
export function shortestPaths(options: PathOptions): Op[][] {
  const events = pathEvents(options);
  const input = { geometry: { regions: options.regions, regionSize: options.regionSize }, zero: '' };
  const model = createTestModel(replicationMachine, {
    input,
    events,
    filterEvents: onlyTypesOf(events),
    serializeState: (snapshot) => serializeSnapshot(snapshot) as never,
  });
  const statePaths = model.getShortestPaths();
  const shortest: Op[][] = [];
  const pathTo = new Map<string, Op[]>();
  const covered = new Set<string>();
  const [initial] = initialTransition(replicationMachine, input);
  const take = (path: readonly Op[]) => {
    let snapshot = initial;
    for (const op of path) {
      const step = stepMachine(snapshot, op);
      for (const id of step.taken) covered.add(id);
      snapshot = step.snapshot;
    }
  };
  for (const path of statePaths) {
    const ops = eventsOf(path);
    pathTo.set(serializeSnapshot(path.state), ops);
    if (ops.length === 0) continue;
    shortest.push(ops);
    take(ops);
  }
  // A transition that leads to a state reached already (a read, a second rejection
  // with the same code) ends no shortest path: add the shortest path to its
  // source followed by its event, so that every transition is taken.
  const adjacency = model.getAdjacencyMap();
  for (const [key, value] of Object.entries(adjacency)) {
    const prefix = pathTo.get(key);
    if (prefix === undefined) continue;
    for (const transition of Object.values(value.transitions) as { event: Op }[]) {
      const op = transition.event;
      const { taken } = stepMachine(value.state, op);
      if (taken.every((id) => covered.has(id))) continue;
      const ops = [...prefix, op];
      shortest.push(ops);
      take(ops);
    }
  }
  return shortest;
}

/**
 * Simple paths (no state visited twice) of the smallest model: one region, one
 * label, with crashes. Their number grows exponentially with the model, so this
 * is the bound: beyond one region the enumeration does not finish.
 */
export const simplePathOptions: PathOptions = { regions: 1, values: 1, crash: true, regionSize: 512 };

export function simplePaths(pathsMax: number): Op[][] {
  const options = simplePathOptions;
  const model = createTestModel(replicationMachine, {
    input: { geometry: { regions: options.regions, regionSize: options.regionSize }, zero: '' },
    events: exploreEvents(options.regions, options.values, options.crash),
    filterEvents: onlyTypesOf(exploreEvents(options.regions, options.values, options.crash)),
    serializeState: (snapshot) => {
      const c = snapshot.context;
      return JSON.stringify([snapshot.value, c.primary, c.secondary, c.current, c.next, c.cow, c.sent]) as never;
    },
  });
  return model.getSimplePaths().map(eventsOf).filter((path) => path.length > 0).slice(0, pathsMax);
}

/** A path's events as scenario steps (labels become their bytes). */
export function pathSteps(path: readonly Op[], book: ContentBook): ScenarioStep[] {
  return path.map((op): ScenarioStep => {
    switch (op.type) {
      case 'write': {
        const digest = book.addLabel(op.data);
        const bytes = book.bytesOf(digest)!;
        return { kind: 'op', op: { type: 'write', region: op.region, data: op.size === bytes.length ? bytes : bytes.subarray(0, op.size) } };
      }
      case 'crash':
      case 'recover':
        return { kind: op.type };
      default:
        return { kind: 'op', op };
    }
  });
}

export interface PathRunResult {
  readonly paths: number;
  readonly steps: number;
  readonly covered: ReadonlySet<string>;
  readonly failure: { readonly path: readonly Op[]; readonly result: ScenarioResult } | null;
}

/** Runs each path against a fresh volume; stops at the first failure, or between paths when shouldStop() says so (`paths` says how many ran). */
export async function runPaths(
  paths: readonly (readonly Op[])[],
  options: PathOptions,
  makeSut: () => SystemUnderTest,
  onProgress?: (done: number) => void,
  shouldStop?: () => boolean,
): Promise<PathRunResult> {
  const covered = new Set<string>();
  let steps = 0;
  for (let index = 0; index < paths.length; index++) {
    if (shouldStop?.() === true) return { paths: index, steps, covered, failure: null };
    const path = paths[index]!;
    const book = new ContentBook(options.regionSize);
    const result = await runScenario(makeSut(), { regions: options.regions, regionSize: options.regionSize }, pathSteps(path, book), book);
    for (const id of result.covered) covered.add(id);
    steps += result.stats.steps;
    if (result.failure !== null) return { paths: index + 1, steps, covered, failure: { path, result } };
    onProgress?.(index + 1);
  }
  return { paths: paths.length, steps, covered, failure: null };
}
