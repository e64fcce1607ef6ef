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
import { sectorSize } from '../impl/geometry.ts';
import { exploreEvents, valueLabel } from '../model/exploreEvents.ts';
import { replicationMachine } from '../model/machine.ts';
import { stepMachine } from '../model/transitions.ts';
import type { ModelSnapshot } from '../model/transitions.ts';
import type { Geometry, Op } from '../model/types.ts';
import { boundaryRegions } from './geometry.ts';
import { Prng } from './prng.ts';
import { nearCopy, randomContent } from './regionData.ts';
import type { NearChange } from './regionData.ts';
import { runScenario } from './scenario.ts';
import type { ScenarioResult, ScenarioStep } from './scenario.ts';
import type { SystemUnderTest } from './sut/systemUnderTest.ts';
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
    ...exploreEvents(options.regions, options.values, options.crash).map((op) =>
      op.type === 'write' ? { ...op, size: options.regionSize } : op,
    ),
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

// The far side's consistent image D is left out of a state's identity: it changes only
// at completion, so it tells apart no transition to take, and with it the bounded
// model would have more states and paths to walk for no transition more.
function serializeSnapshot(snapshot: ModelSnapshot): string {
  const c = snapshot.context;
  return JSON.stringify([
    snapshot.value,
    c.primary,
    c.secondary,
    c.current,
    c.next,
    c.cow,
    c.sent,
    c.primaryAtSwap,
    c.rejection?.code ?? null,
  ]);
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
  return model
    .getSimplePaths()
    .map(eventsOf)
    .filter((path) => path.length > 0)
    .slice(0, pathsMax);
}

/**
 * Where the model's regions go on the volume the paths run on, and what a
 * model label writes there. Without a volume: the model's own regions and the
 * labels' bytes (a label padded with zeros).
 */
export interface PathMapping {
  readonly geometry: Geometry;
  /** The volume region of each model region (distinct, boundaries first). */
  readonly regionOf: readonly number[];
  /** The seed of the full-region bytes a model label writes, or null to write the label itself. */
  readonly seed: number | null;
}

/** FNV-1a of a label, to seed its content: the same label gives the same bytes in every path of a run. */
function labelHash(label: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(label)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash;
}

/**
 * The mapping of the model's regions onto `options.volume`: boundary regions of
 * the volume (boundaryRegions), shuffled by the seed, the first ones taken.
 */
export function pathMapping(options: PathOptions): PathMapping {
  const volume = options.volume;
  if (volume === undefined) {
    const geometry = { regions: options.regions, regionSize: options.regionSize };
    return { geometry, regionOf: Array.from({ length: options.regions }, (_, region) => region), seed: null };
  }
  if (volume.regions < options.regions)
    throw new RangeError(
      `path tests: a volume of ${volume.regions} regions cannot hold the model's ${options.regions}`,
    );
  const seed = options.seed ?? 0;
  const prng = new Prng(seed);
  const boundaries = boundaryRegions(volume.regions);
  const others = Array.from({ length: Math.min(volume.regions, options.regions) }, (_, region) => region).filter(
    (region) => !boundaries.includes(region),
  );
  const candidates = [...boundaries, ...others];
  // Fisher-Yates over the boundaries only: every mapping starts at a boundary.
  for (let index = boundaries.length - 1; index > 0; index--) {
    const other = prng.nextInt(index + 1);
    [candidates[index], candidates[other]] = [candidates[other]!, candidates[index]!];
  }
  return { geometry: volume, regionOf: candidates.slice(0, options.regions), seed };
}

const nearChanges: readonly NearChange[] = ['lastByte', 'middleSector', 'lastSector'];

/**
 * A path's events as scenario steps on the mapped volume (out-of-range regions
 * become the volume's first one past the end). Without a volume seed, labels
 * become their bytes. With one, a region's first write in the path carries
 * seeded random bytes and every later one a near-copy of the region's content
 * (last byte, middle sector, last sector in turn): a write of the model's one
 * label twice still changes the region, so that a transfer of the primary
 * instead of the snapshot view shows.
 */
export function pathSteps(path: readonly Op[], book: ContentBook, mapping?: PathMapping): ScenarioStep[] {
  const volume = mapping?.geometry;
  const regionOf = (region: number) =>
    mapping === undefined ? region : (mapping.regionOf[region] ?? mapping.geometry.regions);
  const written = new Map<number, { bytes: Uint8Array; name: string }>();
  let writes = 0;
  return path.map((op): ScenarioStep => {
    switch (op.type) {
      case 'write': {
        let bytes: Uint8Array;
        let size = op.size;
        if (mapping === undefined || mapping.seed === null) {
          bytes = book.bytesOf(book.addLabel(op.data))!;
        } else {
          // The model's sizes are exact or off by some bytes: keep the offset on the volume's regionSize.
          size = volumeSizeOf(op.size, volume!.regionSize);
          const contentSeed = (mapping.seed ^ labelHash(op.data)) >>> 0;
          const before = written.get(op.region);
          const change = nearChanges[writes++ % nearChanges.length]!;
          const content =
            before === undefined
              ? { bytes: randomContent(contentSeed, volume!.regionSize), name: op.data }
              : { bytes: nearCopy(before.bytes, change, contentSeed + writes), name: `${op.data}~${writes}` };
          if (size === volume!.regionSize) written.set(op.region, content);
          bytes = content.bytes;
          book.addNamed(bytes, content.name);
        }
        const data =
          size === bytes.length ? bytes : size < bytes.length ? bytes.subarray(0, size) : padded(bytes, size);
        return { kind: 'op', op: { type: 'write', region: regionOf(op.region), data } };
      }
      case 'crash':
      case 'recover':
        return { kind: op.type };
      case 'transfer':
      case 'read':
        return { kind: 'op', op: { ...op, region: regionOf(op.region) } };
      default:
        return { kind: 'op', op };
    }
  });
}

/**
 * The size of a model write on the volume: a whole region of the model (a
 * multiple of a sector, whatever regionSize the paths were made with) is a whole
 * region of the volume; a wrong size keeps its distance below the next sector
 * (the model's one byte short stays one byte short).
 */
function volumeSizeOf(modelSize: number, regionSize: number): number {
  const short = (sectorSize - (modelSize % sectorSize)) % sectorSize;
  return regionSize - short;
}

function padded(bytes: Uint8Array, size: number): Uint8Array {
  const copy = new Uint8Array(size);
  copy.set(bytes);
  return copy;
}

export interface PathRunResult {
  readonly paths: number;
  readonly steps: number;
  readonly covered: ReadonlySet<string>;
  /** The volume the paths ran on (a failing path's records are of this geometry). */
  readonly geometry: Geometry;
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
  const mapping = pathMapping(options);
  const geometry = mapping.geometry;
  let steps = 0;
  for (let index = 0; index < paths.length; index++) {
    if (shouldStop?.() === true) return { paths: index, steps, covered, geometry, failure: null };
    const path = paths[index]!;
    const book = new ContentBook(geometry.regionSize);
    const result = await runScenario(makeSut(), geometry, pathSteps(path, book, mapping), book);
    for (const id of result.covered) covered.add(id);
    steps += result.stats.steps;
    if (result.failure !== null) return { paths: index + 1, steps, covered, geometry, failure: { path, result } };
    onProgress?.(index + 1);
  }
  return { paths: paths.length, steps, covered, geometry, failure: null };
}
