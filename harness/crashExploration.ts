// Bounded exhaustive crash exploration (issue "bounded exhaustive crash
// exploration"). Every sequence of up to `length` operations on `regions`
// regions (writes of `values` labels to each region, startCycle, a transfer of
// each region, completeCycle; rejected ones included) is run on the
// implementation, and every accepted operation is crashed at every crash point
// it has: after k of its durable I/O calls, for k = 0 .. io (k = io: after its
// last call, before it answers). Each crash point is tried
//
//   - in process mode (everything that reached the OS survives);
//   - in power mode with EVERY subset of the writes, truncates and namespace
//     operations that are unsynced at that point (the crash layer's explicit
//     keepWrite / keepTruncate / keepNamespace choices), up to 2^subsetBitsMax
//     subsets; beyond that, `samplesMax` seeded subsets (seeds 0..samplesMax-1 of
//     the crash layer's own coins), and the crash point is counted as sampled;
//   - in torn mode the same way, with one choice per unsynced SECTOR.
//
// In addition, each distinct prefix state is crashed between operations (after
// the last operation answered), in the three modes: there the recovered state must
// be exactly the model state, so a write acknowledged before it is durable shows.
//
// Each crash state is recovered (the volume is reopened on the post-crash files)
// and judged by the Oracle: the recovered state must be one that
// model/crashOutcomes.ts allows (torn regions checked sector by sector on the
// real bytes), every invariant must hold, and the volume must be usable: it
// finishes a cycle (startCycle when idle, a transfer of every region of C,
// completeCycle) with the model and the implementation compared after each step.
//
// A process crash leaves the killed process's unsynced writes in the page cache,
// and recovery runs on a crash layer that inherits them (CrashStorage.handOverTo):
// they are still not durable. So after a process crash that left any, recovery
// and the finished cycle are followed by a power loss that drops every write
// still unsynced, and a second recovery: what the first recovery read and built
// on must survive it (a recovery that takes the page cache for durable does not).
// The power loss is startCycle crashed before its first durable call (crashAfterIo
// 0), with a seed whose coins drop everything, so that a trace says it exactly.
//
// Beyond the operations (issue 12, item 6), each in a file of harness/crash/:
//   - crashes inside create, at each of its durable calls, in every mode
//     (createCrashes.ts), and create in a directory holding a user's files;
//   - crashes inside recovery, at each of its durable calls, and inside the
//     recovery after a kill inside one (recoveryCrashes.ts), for each distinct
//     recovery path and kind of prefix state;
//   - rot: a byte flipped in each structure of a synced file, then E_CORRUPT or
//     cycles that end with S = P, and crashes inside scrub --repair (rot.ts);
//   - torn mode tears the volume's own records inside a sector (choices.ts);
//   - a wide geometry explored through a few of its regions (activeRegions).
// The crash layer (harness/crashStorage.ts) makes names durable only by a sync of
// their directory, also across a kill: see its head for the model. An error the
// implementation throws is a failure with its stack, never a crash of the explorer.
// Cases trace format v1 cannot say are saved as text (crash/failureTrace.ts).
//
// HOW IT IS MADE FAST
//
// - The volume lives on an in-memory Storage (MemoryStorage below) under the
//   real crash layer (CrashStorage): no file system, no fsync, and a volume's
//   files are copied in microseconds.
// - The prefix tree is enumerated breadth first, and prefixes are deduplicated:
//   two prefixes whose model state (volatile sent set and ghost P@swap included)
//   AND whose implementation state (the digest of every file, and the sent set
//   the volume holds in memory) are equal are explored once. We do NOT dedupe by
//   model state alone: the implementation's files are not a function of it
//   (metadata sequence numbers, cycle numbers, stale COW entries differ). A
//   prefix that leaves unsynced data behind (a broken implementation) is never
//   merged with another.
// - A prefix's state is restored, not replayed: its files are copied back, the
//   volume is reopened on a fresh crash layer, and the sent set is put back into
//   the volume (through a subclass of the volume class under test). This relies
//   on reopening a volume whose files are all durable giving the same in-memory
//   state as the run that wrote them (true of the reference: `create` ends with
//   the same `recover` that `open` runs). A prefix whose files are not all durable
//   is restored from its nearest all-durable ancestor and the operations since
//   are replayed, so that the crash layer knows what is unsynced.
// - One process-mode run per crash point learns what is unsynced there (the
//   crash layer's unsyncedWrites() etc.), which sizes the power and torn subsets.
// - Within one (prefix, operation) pair, a crash whose post-crash files equal
//   those of one already judged (process at k is power at k+1 with the last write
//   dropped, a torn choice keeping or dropping every sector of a write is a
//   power choice, ...) is not judged again: the allowed outcomes are the same, and
//   modes are tried process, power, torn so that the stricter non-torn outcome
//   list judges first. Such runs are counted as duplicates, not as states. A
//   process crash that leaves unsynced writes is told apart by them too (they are
//   what recovery inherits); once judged, it also covers its files with nothing
//   inherited (a power crash keeping everything): the same recovery, and more.
//
// ON A FAILURE the exploration stops. The failing case is rerun from scratch,
// without any restore (create, the prefix, the crashing operation, recovery, the
// finishing steps), through harness/scenario.ts, which records it as a v1 trace.
// A power or torn subset is not expressible in trace format v1, so the crash
// layer's seeds 0..seedSearchMax are searched for one whose coins make the same
// choices; the rerun uses that seed (not the explicit choices), so the saved
// trace is checked to reproduce. When no seed matches, the subset goes into a `#`
// comment and the trace says so. A power crash BETWEEN operations is not
// expressible in v1 either (`{"op": "crash"}` is a process crash): the trace
// writes it as the next operation (one the model accepts there) crashed before
// its first durable I/O call, `"crashAfterIo": 0` with the same mode and seed,
// which leaves the same unsynced data to the same coins; when no such rerun
// fails, it falls back to `crash` with a comment. The report says whether the
// rerun from scratch failed (`reproduced`) and whether the trace is exact.

import { posix } from 'node:path';
import { cowIndexSize } from '../impl/cowStore.ts';
import { isCowmapError } from '../impl/errors.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { initialState } from '../model/rules.ts';
import type { Geometry, ModelState } from '../model/types.ts';
import type { UnsyncedWriteInfo } from './crashStorage.ts';
import { Oracle, OracleFailure } from './oracle.ts';
import type { Difference, OracleStats } from './oracle.ts';
import type { ScenarioStep } from './scenario.ts';
import type { CrashRequest, SutOp, SutReply } from './sut.ts';
import { ContentBook } from './trace/content.ts';
import { defaultNames } from './trace/reader.ts';
import { ExplorationSut } from './crash/explorationSut.ts';
import { crashRecoveries, RecoveryCrashPlan } from './crash/recoveryCrashes.ts';
import { crashCreates } from './crash/createCrashes.ts';
import { exploreRot, rotKind } from './crash/rot.ts';
import {
  choiceBitCount,
  choicesAt,
  choiceText,
  dropEverything,
  explorationModes,
  noShape,
  powerChoices,
  seedFor,
} from './crash/choices.ts';
import type { Choice, ExplorationMode } from './crash/choices.ts';
import type { ChoiceShape, Restore, VolumeClass } from './crash/explorationSut.ts';
import { asFailure, traceOfFailure } from './crash/failureTrace.ts';

export { MemoryStorage } from './crash/memoryStorage.ts';
import { MemoryStorage } from './crash/memoryStorage.ts';
export { asFailure } from './crash/failureTrace.ts';
export { formatFailureReport, formatSummary, statesPerSecond } from './crash/report.ts';
export type { ChoiceShape, VolumeClass } from './crash/explorationSut.ts';

// ---------------------------------------------------------------------------
// Options, results

export { explorationModes, seedFor } from './crash/choices.ts';
export type { ExplorationMode } from './crash/choices.ts';

export interface ExplorationOptions {
  /** Longest operation sequence. */
  readonly length: number;
  readonly regions: number;
  /** Labels written to each region: `A1`..`A<values>` for region A. */
  readonly values: number;
  /** Bytes per region (a multiple of 512); two sectors by default, so that torn writes can mix. */
  readonly regionSize?: number;
  readonly modes?: readonly ExplorationMode[];
  /** Power and torn crash points with at most this many choice bits try every subset; others are sampled. */
  readonly subsetBitsMax?: number;
  /** Seeded subsets tried at a crash point with more than subsetBitsMax choice bits. */
  readonly samplesMax?: number;
  /** The implementation under test (a mutant, for the self-check). */
  readonly volumeClass?: VolumeClass;
  /** Its name in reports and file names. */
  readonly volumeName?: string;
  /** Where a failing case is saved as a trace; null: not saved. */
  readonly failuresDir?: string | null;
  /** Seeds searched for one whose coins make an exhaustive subset's choices. */
  readonly seedSearchMax?: number;
  /**
   * Merge prefixes that reach the same model state and the same implementation
   * state (default true). Off: every accepted prefix is explored on its own (for
   * measuring the reduction; rejected operations change nothing and are still merged).
   */
  readonly dedupePrefixes?: boolean;
  readonly onProgress?: (stats: ExplorationStats) => void;
  /**
   * Torn mode also tears the volume's own records inside a sector, byte by byte
   * (default true; see harness/crash/choices.ts, tearsAt).
   */
  readonly byteTears?: boolean;
  /** The regions the operations write and transfer (default all): a wide geometry explores a few of them. */
  readonly activeRegions?: readonly number[];
  /** Crash inside create at each of its durable calls (default true). */
  readonly createCrashes?: boolean;
  /** Distinct recovery paths (the durable calls a recovery makes) crashed inside at each call (default 8; 0: none). */
  readonly recoveryPathsMax?: number;
  /** After a process crash inside a recovery, crash the next recovery too, at each of its calls (default true). */
  readonly secondRecoveryCrash?: boolean;
  /** Rot: flip a byte of each structure in synced files at chosen prefix states (default true). */
  readonly rot?: boolean;
  /** Prefix states (one per kind, those with the most to lose first) flipped by rot (default 4). */
  readonly rotStatesMax?: number;
  /** Of the rot states, how many also crash scrub --repair after each flip (default 1). */
  readonly scrubStatesMax?: number;
  /** Crash inside scrub --repair after rot (default true; skipped when the volume has no scrub). */
  readonly scrubCrashes?: boolean;
}

export interface ModeStats {
  /** Crash points tried in this mode. */
  points: number;
  /** Of those, crash points with too many choice bits, where seeded subsets were sampled. */
  sampledPoints: number;
  /** Crash runs (one per subset tried). */
  runs: number;
  /** Distinct crash states judged (runs whose post-crash files were not judged before at that point). */
  states: number;
}

export interface ExplorationStats {
  /** Operation sequences of length 1..L covered (every one, rejected operations included). */
  sequences: number;
  /** Distinct prefix states reached (root included), after deduplication. */
  prefixes: number;
  /** Distinct prefix states expanded (depth < L). */
  expanded: number;
  /** (prefix, operation) pairs run. */
  opRuns: number;
  /** Of those, rejected operations (no I/O, nothing to crash). */
  rejected: number;
  /** Accepted (prefix, operation) pairs, and between-operation crash sites. */
  crashSites: number;
  /** Crash points: every k in 0..io of every accepted pair, plus one between operations per prefix. */
  crashPoints: number;
  /** Crash points where every subset was tried (in power and torn, per mode). */
  exhaustedPoints: number;
  /** Crash points where subsets were sampled. */
  sampledPoints: number;
  /** Crash runs, duplicates included. */
  runs: number;
  /** Distinct crash states recovered and judged. */
  crashStates: number;
  /** Runs whose post-crash files equal a state already judged at the same crash site. */
  duplicates: number;
  /** Process crash states whose recovery inherited unsynced writes, then lost power after finishing the cycle. */
  powerLossesAfterRecovery: number;
  /** Largest number of choice bits seen at a crash point (power, torn). */
  choiceBitsMax: { power: number; torn: number };
  byMode: Record<ExplorationMode, ModeStats>;
  /** Crashes inside create, inside recovery (a second crash inside it included), inside scrub --repair. */
  inside: Record<InsideKind, InsideStats>;
  rot: RotStats;
  /** What was skipped and why (a phase the implementation cannot run yet). */
  notes: string[];
  oracle: OracleStats;
  seconds: number;
}

export type InsideKind = 'create' | 'recovery' | 'scrub';

export interface InsideStats {
  /** Crash points: a durable call of create, of a recovery (or of the recovery after that one crashed), of scrub. */
  points: number;
  runs: number;
  /** Distinct crash states judged. */
  states: number;
}

export interface RotStats {
  /** Flips tried: a byte of a synced file at an offset aimed at one structure, at one prefix state. */
  runs: number;
  /** Of those, the volume reported E_CORRUPT (at open, an operation, state() or a read of S). */
  detected: number;
  /** The others: the volume ran its cycles to the end with S equal to P. */
  healed: number;
}

/** The crash states per kind, as `cowmap crashes` prints them. */
export function statesPerKind(stats: ExplorationStats): Array<{ kind: string; states: number }> {
  return [
    { kind: 'process', states: stats.byMode.process.states },
    { kind: 'power', states: stats.byMode.power.states },
    { kind: 'torn', states: stats.byMode.torn.states },
    { kind: 'rot', states: stats.rot.runs },
    { kind: 'inside create', states: stats.inside.create.states },
    { kind: 'inside recovery', states: stats.inside.recovery.states },
    { kind: 'inside scrub', states: stats.inside.scrub.states },
  ];
}

export interface ExplorationFailure {
  readonly message: string;
  readonly differences: readonly Difference[];
  /** What failed, in words: the prefix, the operation, the crash point and choice. */
  readonly description: string;
  /** The v1 trace of the failing case. */
  readonly trace: string;
  /** Where the trace was saved, or null. */
  readonly file: string | null;
  /** Whether rerunning the trace's steps from scratch (no restore, seed not explicit choices) fails too. */
  readonly reproduced: boolean;
  /** Whether the trace says exactly which subset the crash kept (a matching seed was found, or none was needed). */
  readonly exact: boolean;
  /** Set when trace format v1 cannot say the case (a crash inside create or recovery, rot): the steps in words. */
  readonly notReplayable?: string;
}

export interface ExplorationResult {
  readonly stats: ExplorationStats;
  readonly failure: ExplorationFailure | null;
  /** The statechart transition ids (model/transitions.ts) the explored steps took. */
  readonly covered: ReadonlySet<string>;
}

export const explorationDefaults = {
  length: 4,
  regions: 2,
  values: 2,
  regionSize: 1024,
  subsetBitsMax: 6,
  samplesMax: 16,
  seedSearchMax: 1 << 20,
  recoveryPathsMax: 8,
  rotStatesMax: 4,
  scrubStatesMax: 1,
  failuresDir: 'traces/failures',
} as const;

// ---------------------------------------------------------------------------
// The exploration

export interface PrefixNode {
  readonly depth: number;
  /** The operations from the root (the first path found: a shortest one). */
  readonly path: readonly SutOp[];
  readonly model: ModelState;
  readonly restore: Restore;
}

/** One failing crash run, as found: enough to rerun it from scratch. */
export interface FoundFailure {
  readonly error: OracleFailure;
  readonly node: PrefixNode;
  /** The crashing operation, or null for a crash between operations (or no crash at all). */
  readonly op: SutOp | null;
  /** The operation that failed without a crash (choice null), or null. */
  readonly plainOp: SutOp | null;
  readonly crashAfterIo: number | null;
  readonly choice: Choice | null;
  readonly shape: ChoiceShape | null;
  /** The steps after the prefix, as run up to the failing one. */
  readonly steps: readonly ScenarioStep[];
  /** Set when the failure came at or after the power loss that follows a process crash's recovery. */
  readonly powerLoss?: PowerLossAfterRecovery;
  /** A case trace format v1 cannot say (inside create or recovery, rot): what was done, in words. */
  readonly special?: string;
}

/** The power loss after a process crash, recovery and a finished cycle. */
export interface PowerLossAfterRecovery {
  /** A seed whose coins drop every unsynced record there, or null: none found, explicit choices used. */
  readonly seed: number | null;
}

function emptyModeStats(): ModeStats {
  return { points: 0, sampledPoints: 0, runs: 0, states: 0 };
}

function emptyInsideStats(): InsideStats {
  return { points: 0, runs: 0, states: 0 };
}

function emptyStats(): ExplorationStats {
  return {
    sequences: 0,
    prefixes: 0,
    expanded: 0,
    opRuns: 0,
    rejected: 0,
    crashSites: 0,
    crashPoints: 0,
    exhaustedPoints: 0,
    sampledPoints: 0,
    runs: 0,
    crashStates: 0,
    duplicates: 0,
    powerLossesAfterRecovery: 0,
    choiceBitsMax: { power: 0, torn: 0 },
    byMode: { process: emptyModeStats(), power: emptyModeStats(), torn: emptyModeStats() },
    inside: { create: emptyInsideStats(), recovery: emptyInsideStats(), scrub: emptyInsideStats() },
    rot: { runs: 0, detected: 0, healed: 0 },
    notes: [],
    oracle: { steps: 0, invariantChecks: 0, crashStates: 0 },
    seconds: 0,
  };
}

function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new RangeError(`crash exploration: ${name} must be an integer in ${min}..${max}, got ${value}`);
}

const sectorBytes = 512;
/** Geometries up to this many regions; the operations touch at most 8 of them (activeRegions). */
const regionsMax = 1 << 16;

/**
 * The label written as value `value` to region `name`: `A1` for a one-sector
 * region; for a larger one the short name again at the start of every sector
 * (`A1....A1`, dots in between), so that every sector of two contents differs and
 * a torn write shows (a short label followed by zeros would leave every sector but
 * the first equal, and torn mode would test nothing).
 */
export function explorationLabel(name: string, value: number, regionSize: number): string {
  const short = `${name}${value}`;
  let label = short;
  for (let sector = 1; sector < regionSize / sectorBytes; sector++)
    label += '.'.repeat(sector * sectorBytes - label.length) + short;
  return label;
}

/** A text with the long exploration labels shown by their short names. */
export function shortenLabels(text: string): string {
  return text.replace(/([A-Z0-9]+)\.{100,}\1(?:\.+\1)*/g, '$1');
}

/** The operations of the exploration: writes of every label to every region, the swap, every transfer, completion. */
export function explorationOps(
  regions: number,
  values: number,
  book: ContentBook,
  active?: readonly number[],
): SutOp[] {
  const names = defaultNames(regions);
  const ops: SutOp[] = [];
  const touched = active ?? Array.from({ length: regions }, (_, region) => region);
  for (const region of touched) {
    for (let value = 1; value <= values; value++) {
      const label = explorationLabel(names[region]!, value, book.regionSize);
      ops.push({ type: 'write', region, data: book.bytesOf(book.addLabel(label))! });
    }
  }
  ops.push({ type: 'startCycle' });
  for (const region of touched) ops.push({ type: 'transfer', region });
  ops.push({ type: 'completeCycle' });
  return ops;
}

export { modelOpOf } from './sut.ts';

/**
 * Prefix states for rot, those with the most to lose first: a running cycle with
 * copies in W, bits in C and X, regions sent (stable among equals: shortest first).
 */
function richestFirst(nodes: PrefixNode[]): PrefixNode[] {
  const count = (values: readonly boolean[]) => values.filter((value) => value).length;
  const score = (model: ModelState) =>
    count(model.current) +
    count(model.next) +
    2 * count(model.cow.map((copy) => copy !== null)) +
    count(model.sent) +
    (model.phase === 'replicating' ? 1 : 0);
  return nodes
    .map((node, index) => ({ node, index, score: score(node.model) }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .map(({ node }) => node);
}

export function describeOp(op: SutOp, book: ContentBook, names: readonly string[]): string {
  switch (op.type) {
    case 'write':
      return `write ${names[op.region]} ${shortenLabels(book.show(book.addBytes(op.data)))}`;
    case 'transfer':
      return `transfer ${names[op.region]}`;
    case 'read':
      return `read ${names[op.region]} ${op.volume}`;
    default:
      return op.type;
  }
}

export class Explorer {
  readonly stats = emptyStats();
  readonly book: ContentBook;
  readonly geometry: Geometry;
  readonly names: string[];
  readonly ops: SutOp[];
  readonly modes: readonly ExplorationMode[];
  readonly subsetBitsMax: number;
  readonly samplesMax: number;
  readonly sut: ExplorationSut;
  readonly covered = new Set<string>();
  private readonly started = performance.now();
  private lastProgress = 0;
  readonly recoveryCrashes: RecoveryCrashPlan;
  /** The regions the operations write and transfer. */
  readonly activeRegions: readonly number[];
  readonly volumeClass: VolumeClass;
  /** One prefix state of each kind (rotKind), the first found, for rot and scrub. */
  private readonly rotNodes = new Map<string, PrefixNode>();
  /** Which unsynced writes torn mode also tears inside a sector (null: none). */
  readonly tearable: ((write: UnsyncedWriteInfo) => boolean) | null;

  constructor(readonly options: ExplorationOptions) {
    checkInteger('length', options.length, 0, 8);
    checkInteger('regions', options.regions, 1, regionsMax);
    this.activeRegions = [...(options.activeRegions ?? Array.from({ length: options.regions }, (_, region) => region))];
    checkInteger('the number of regions written', this.activeRegions.length, 1, 8);
    for (const region of this.activeRegions) checkInteger('a region written', region, 0, options.regions - 1);
    this.volumeClass = options.volumeClass ?? ReplicatedVolume;
    checkInteger('values', options.values, 1, 8);
    this.subsetBitsMax = options.subsetBitsMax ?? explorationDefaults.subsetBitsMax;
    this.samplesMax = options.samplesMax ?? explorationDefaults.samplesMax;
    checkInteger('subsetBitsMax', this.subsetBitsMax, 0, 20);
    checkInteger('samplesMax', this.samplesMax, 1, 1 << 20);
    const regionSize = options.regionSize ?? explorationDefaults.regionSize;
    checkInteger('regionSize', regionSize, 512, 1 << 20);
    if (regionSize % 512 !== 0)
      throw new RangeError(`crash exploration: regionSize must be a multiple of 512, got ${regionSize}`);
    this.modes = explorationModes.filter((mode) => (options.modes ?? explorationModes).includes(mode));
    this.geometry = { regions: options.regions, regionSize };
    this.book = new ContentBook(regionSize);
    this.names = defaultNames(options.regions);
    this.ops = explorationOps(options.regions, options.values, this.book, this.activeRegions);
    this.sut = new ExplorationSut(
      options.volumeName ?? 'the reference implementation',
      options.volumeClass ?? ReplicatedVolume,
    );
    for (let depth = 1; depth <= options.length; depth++) this.stats.sequences += this.ops.length ** depth;
    this.recoveryCrashes = new RecoveryCrashPlan(options.recoveryPathsMax ?? explorationDefaults.recoveryPathsMax);
    const indexBytes = cowIndexSize(options.regions);
    // Region data (P, S, the COW slots) tears sector-wise only: see tearsAt.
    this.tearable =
      options.byteTears === false
        ? null
        : (write) => {
            const name = posix.basename(write.path);
            return name !== 'primary' && name !== 'image' && !(name === 'cow' && write.position >= indexBytes);
          };
  }

  oracleAt(model: ModelState): Oracle {
    return new Oracle(this.geometry, this.book, this.sut, {
      state: model,
      covered: this.covered,
      stats: this.stats.oracle,
    });
  }

  progress(): void {
    if (this.options.onProgress === undefined) return;
    const now = performance.now();
    if (now - this.lastProgress < 250) return;
    this.lastProgress = now;
    this.stats.seconds = (now - this.started) / 1000;
    this.options.onProgress(this.stats);
  }

  /** Runs the exploration; returns the first failure found, or null. */
  async run(): Promise<FoundFailure | null> {
    const sut = this.sut;
    const rootModel = initialState(this.geometry, this.book.zero);
    const unmade = await this.createRoot(rootModel);
    if (unmade !== null) return unmade;
    const root: PrefixNode = {
      depth: 0,
      path: [],
      model: rootModel,
      restore: { image: sut.files.clone(), sent: [], replay: [] },
    };
    this.noteRotNode(root);
    const seen = new Set<string>();
    seen.add(this.nodeKey(root.model, sut.files.digest(), [], true));
    this.stats.prefixes = 1;
    let level: PrefixNode[] = [root];
    try {
      if (this.options.createCrashes !== false) {
        const inCreate = await crashCreates(this, root);
        if (inCreate !== null) return inCreate;
      }
      // Between-operation crashes of the root (a fresh volume).
      let found = await this.crashBetween(root);
      if (found !== null) return found;
      for (let depth = 0; depth < this.options.length && level.length > 0; depth++) {
        const next: PrefixNode[] = [];
        for (const node of level) {
          this.stats.expanded++;
          for (const op of this.ops) {
            const expanded = await this.expand(node, op, seen);
            if ('failure' in expanded) return expanded.failure;
            if (expanded.child !== null) {
              next.push(expanded.child);
              this.noteRotNode(expanded.child);
              found = await this.crashBetween(expanded.child);
              if (found !== null) return found;
            }
            if (expanded.io !== null) {
              found = await this.crashInside(node, op, expanded.io);
              if (found !== null) return found;
            }
          }
        }
        level = next;
      }
      if (this.options.rot !== false) {
        const rotten = await exploreRot(
          this,
          richestFirst([...this.rotNodes.values()]).slice(
            0,
            this.options.rotStatesMax ?? explorationDefaults.rotStatesMax,
          ),
        );
        if (rotten !== null) return rotten;
      }
      return null;
    } finally {
      this.stats.seconds = (performance.now() - this.started) / 1000;
      await sut.close();
    }
  }

  /**
   * The fresh volume every prefix starts from. A create that throws, refuses, or
   * returns with anything unsynced (a power loss could undo part of an
   * acknowledged create) is a failure of the implementation, not of the explorer.
   */
  private async createRoot(rootModel: ModelState): Promise<FoundFailure | null> {
    const label = `create of ${this.geometry.regions} regions of ${this.geometry.regionSize} bytes`;
    const root: PrefixNode = {
      depth: 0,
      path: [],
      model: rootModel,
      restore: { image: new MemoryStorage(), sent: [], replay: [] },
    };
    try {
      await this.sut.create(this.geometry);
      if (!this.sut.isClean) {
        const left = this.sut.shape();
        throw new OracleFailure(
          'sut',
          `${label} returned with ${left.writes.length} write(s), ${left.truncates} truncate(s) and ${left.namespace} name change(s) not durable`,
        );
      }
      return null;
    } catch (error) {
      return {
        error: asFailure(error, label),
        node: root,
        op: null,
        plainOp: null,
        crashAfterIo: null,
        choice: null,
        shape: null,
        steps: [],
        special: label,
      };
    }
  }

  /** Keeps the first (shortest) prefix state of each kind whose files are all durable, for rot. */
  private noteRotNode(node: PrefixNode): void {
    if (node.restore.replay.length > 0) return;
    const kind = rotKind(node.model, this.activeRegions);
    if (!this.rotNodes.has(kind)) this.rotNodes.set(kind, node);
  }

  private nodeKey(model: ModelState, digest: string, sent: readonly number[], clean: boolean): string {
    // A prefix that left unsynced data is never merged: the crash layer's records are part of its state.
    const unique = !clean || this.options.dedupePrefixes === false;
    return `${JSON.stringify(model)}|${digest}|${sent.join(',')}|${unique ? `unique#${this.stats.prefixes}` : 'clean'}`;
  }

  /**
   * Puts the implementation back into `node`'s state. Reopening files that are all
   * durable is what a process crash between operations does, so a volume that
   * cannot be reopened there fails as such a crash.
   */
  restoreAt(node: PrefixNode): FoundFailure | null {
    try {
      this.sut.restore(node.restore);
      return null;
    } catch (error) {
      let failure: OracleFailure;
      if (isCowmapError(error))
        failure = new OracleFailure(
          'divergence',
          `reopening the volume after ${this.describePath(node.path)} failed with ${error.code}: ${error.message}`,
        );
      else failure = asFailure(error, `reopening the volume after ${this.describePath(node.path)}`);
      const choice: Choice = { mode: 'process', bits: null, seed: 0 };
      return {
        error: failure,
        node,
        op: null,
        plainOp: null,
        crashAfterIo: null,
        choice,
        shape: null,
        steps: [{ kind: 'crash' }, { kind: 'recover' }],
      };
    }
  }

  /** Runs `op` from `node` without a crash: the model and the implementation must agree. */
  private async expand(
    node: PrefixNode,
    op: SutOp,
    seen: Set<string>,
  ): Promise<{ child: PrefixNode | null; io: number | null } | { failure: FoundFailure }> {
    const sut = this.sut;
    this.stats.opRuns++;
    const unopened = this.restoreAt(node);
    if (unopened !== null) return { failure: unopened };
    const oracle = this.oracleAt(node.model);
    const steps: ScenarioStep[] = [{ kind: 'op', op }];
    let reply: SutReply;
    try {
      reply = await oracle.step(op, `${this.describe(op)} after ${this.describePath(node.path)}`, null);
    } catch (error) {
      return {
        failure: {
          error: asFailure(error, this.describe(op)),
          node,
          op: null,
          plainOp: op,
          crashAfterIo: null,
          choice: null,
          shape: null,
          steps,
        },
      };
    }
    const io = sut.lastIoCount;
    if (!reply.ok) {
      this.stats.rejected++;
      if (io > 0) {
        const error = new OracleFailure(
          'sut',
          `${this.describe(op)} was rejected with ${reply.code} after ${io} durable I/O call(s): a rejection must change nothing`,
        );
        return {
          failure: { error, node, op: null, plainOp: op, crashAfterIo: null, choice: null, shape: null, steps },
        };
      }
      return { child: null, io: null };
    }
    const image = sut.files.clone();
    const sent = sut.sentRegions();
    const clean = sut.isClean;
    const key = this.nodeKey(oracle.state, image.digest(), sent, clean);
    if (seen.has(key)) return { child: null, io };
    seen.add(key);
    this.stats.prefixes++;
    const restore: Restore = clean
      ? { image, sent, replay: [] }
      : { ...node.restore, replay: [...node.restore.replay, op] };
    return { child: { depth: node.depth + 1, path: [...node.path, op], model: oracle.state, restore }, io };
  }

  private readonly opTexts = new Map<SutOp, string>();
  private readonly pathTexts = new Map<readonly SutOp[], string>();

  /** An operation in words (cached: the exploration's operations are a fixed list). */
  describe(op: SutOp): string {
    let text = this.opTexts.get(op);
    if (text === undefined) {
      text = describeOp(op, this.book, this.names);
      this.opTexts.set(op, text);
    }
    return text;
  }

  describePath(path: readonly SutOp[]): string {
    let text = this.pathTexts.get(path);
    if (text === undefined) {
      text = path.length === 0 ? 'a fresh volume' : `'${path.map((op) => this.describe(op)).join(', ')}'`;
      this.pathTexts.set(path, text);
    }
    return text;
  }

  /** Recovers after the crash and finishes a cycle through the oracle; returns the steps run. */
  async recoverAndFinish(oracle: Oracle, label: string, steps: ScenarioStep[]): Promise<void> {
    steps.push({ kind: 'recover' });
    await oracle.step({ type: 'recover' }, `recover after ${label}`);
    await this.finishCycle(oracle, label, steps);
  }

  /** Finishes a cycle from a running volume: startCycle when idle, a transfer of every region of C, completeCycle. */
  async finishCycle(oracle: Oracle, label: string, steps: ScenarioStep[]): Promise<void> {
    if (oracle.state.phase === 'idle') {
      steps.push({ kind: 'op', op: { type: 'startCycle' } });
      await oracle.step({ type: 'startCycle' }, `startCycle after recovering from ${label}`);
    }
    const current = oracle.state.current;
    for (let region = 0; region < current.length; region++) {
      if (!current[region]) continue;
      const op: SutOp = { type: 'transfer', region };
      steps.push({ kind: 'op', op });
      await oracle.step(op, `transfer ${this.names[region]} after recovering from ${label}`);
    }
    steps.push({ kind: 'op', op: { type: 'completeCycle' } });
    await oracle.step({ type: 'completeCycle' }, `completeCycle after recovering from ${label}`);
  }

  private readonly dropAllSeeds = new Map<number, number | null>();

  /** A seed whose crash-layer coins drop all of `bitCount` choices (cached), or null. */
  private dropAllSeed(bitCount: number): number | null {
    let seed = this.dropAllSeeds.get(bitCount);
    if (seed === undefined) {
      seed = seedFor(
        new Array<boolean>(bitCount).fill(false),
        this.options.seedSearchMax ?? explorationDefaults.seedSearchMax,
      );
      this.dropAllSeeds.set(bitCount, seed);
    }
    return seed;
  }

  /**
   * After a process crash, its recovery and a finished cycle (idle): a power loss
   * that keeps nothing unsynced, the writes recovery inherited from the killed
   * process among them, then a recovery judged as after any crash inside startCycle
   * (the state before it, or after it). `followUp` says, once it starts, how it was made.
   */
  async powerLossAfterRecovery(
    oracle: Oracle,
    label: string,
    steps: ScenarioStep[],
    followUp: { powerLoss: PowerLossAfterRecovery | null },
  ): Promise<void> {
    const sut = this.sut;
    if (oracle.state.phase !== 'idle' || oracle.state.crashed)
      throw new OracleFailure('sut', `${label}: the cycle after recovery did not end idle`);
    this.stats.powerLossesAfterRecovery++;
    const seed = this.dropAllSeed(choiceBitCount(sut.shape(), false));
    followUp.powerLoss = { seed };
    const op: SutOp = { type: 'startCycle' };
    const crash: CrashRequest = { afterIo: 0, mode: 'power', seed: seed ?? 0, torn: false };
    sut.crashChoices = seed === null ? dropEverything : {};
    const what = `a power loss keeping nothing unsynced (startCycle crashed after io 0) after recovering from ${label} and finishing the cycle`;
    // The crash point's own shape sizes its power and torn subsets: this crash must not replace it.
    const shapeAtCrash = sut.lastShape;
    try {
      steps.push({ kind: 'crashInside', op, crash });
      await oracle.stepCrashing(op, crash, what);
      steps.push({ kind: 'recover' });
      await oracle.step({ type: 'recover' }, `recover after ${what}`);
    } finally {
      sut.lastShape = shapeAtCrash;
    }
  }

  /** Every crash point of an accepted operation: k = 0..io, in every mode and subset. */
  private async crashInside(node: PrefixNode, op: SutOp, io: number): Promise<FoundFailure | null> {
    const sut = this.sut;
    this.stats.crashSites++;
    const judged = new Set<string>();
    const opText = this.describe(op);
    for (let afterIo = 0; afterIo <= io; afterIo++) {
      this.stats.crashPoints++;
      // Learn what is unsynced at this point with a process crash (judged too when process mode is on).
      let shape: ChoiceShape | null = null;
      if (!this.modes.includes('process')) {
        const unopened = this.restoreAt(node);
        if (unopened !== null) return unopened;
        await sut.applyCrashing(op, { afterIo, mode: 'process', seed: 0, torn: false });
        shape = sut.lastShape;
        if (shape === null) return this.fewerCalls(node, op, afterIo, io);
      }
      let sampledHere = false;
      for (const mode of this.modes) {
        const modeStats = this.stats.byMode[mode];
        modeStats.points++;
        // Process mode needs no shape; the modes run process first, which learns it for the others.
        const { choices, sampled, bits } = choicesAt(
          mode,
          shape ?? noShape,
          this.subsetBitsMax,
          this.samplesMax,
          this.tearable,
        );
        if (mode !== 'process') this.stats.choiceBitsMax[mode] = Math.max(this.stats.choiceBitsMax[mode], bits);
        if (sampled) {
          modeStats.sampledPoints++;
          sampledHere = true;
        }
        for (const choice of choices) {
          const how = choiceText(choice);
          const label = `${opText} crashed after io ${afterIo} of ${io} (${mode}${how === '' ? '' : `, ${how}`}) after ${this.describePath(node.path)}`;
          const found = await this.crashRun(
            node,
            judged,
            label,
            modeStats,
            choice,
            shape,
            (oracle, steps) => {
              const crash: CrashRequest = {
                afterIo,
                mode: mode === 'process' ? 'process' : 'power',
                seed: choice.seed,
                torn: mode === 'torn',
              };
              steps.push({ kind: 'crashInside', op, crash });
              sut.crashChoices = powerChoices(choice, shape);
              return oracle.stepCrashing(op, crash, label).then(() => undefined);
            },
            { op, afterIo },
          );
          if (found !== null) return found;
          if (mode === 'process' && shape === null) {
            shape = sut.lastShape;
            if (shape === null) return this.fewerCalls(node, op, afterIo, io);
          }
        }
      }
      if (sampledHere) this.stats.sampledPoints++;
      else this.stats.exhaustedPoints++;
    }
    return null;
  }

  /**
   * The operation, run again from the same state, finished before its k-th durable
   * call: the implementation is not deterministic, and crash points cannot be named.
   */
  private fewerCalls(node: PrefixNode, op: SutOp, afterIo: number, io: number): FoundFailure {
    const label = `${this.describe(op)} after ${this.describePath(node.path)}`;
    const error = new OracleFailure(
      'sut',
      `${label} made ${io} durable I/O calls once, and fewer than ${afterIo} when run again from the same state: its calls must be the same on every run`,
    );
    return {
      error,
      node,
      op: null,
      plainOp: op,
      crashAfterIo: null,
      choice: null,
      shape: null,
      steps: [{ kind: 'op', op }],
      special: label,
    };
  }

  /** Crashes between operations at a prefix state: the recovered state must be exactly the model's. */
  private async crashBetween(node: PrefixNode): Promise<FoundFailure | null> {
    const sut = this.sut;
    this.stats.crashSites++;
    this.stats.crashPoints++;
    const unopened = this.restoreAt(node);
    if (unopened !== null) return unopened;
    const shape = sut.shape();
    const judged = new Set<string>();
    let sampledHere = false;
    for (const mode of this.modes) {
      const modeStats = this.stats.byMode[mode];
      modeStats.points++;
      const { choices, sampled, bits } = choicesAt(mode, shape, this.subsetBitsMax, this.samplesMax, this.tearable);
      if (mode !== 'process') this.stats.choiceBitsMax[mode] = Math.max(this.stats.choiceBitsMax[mode], bits);
      if (sampled) {
        modeStats.sampledPoints++;
        sampledHere = true;
      }
      for (const choice of choices) {
        const how = choiceText(choice);
        const label = `a ${mode} crash between operations${how === '' ? '' : ` (${how})`} after ${this.describePath(node.path)}`;
        const found = await this.crashRun(
          node,
          judged,
          label,
          modeStats,
          choice,
          shape,
          async (oracle, steps) => {
            steps.push({ kind: 'crash' });
            sut.betweenCrash = { mode: mode === 'process' ? 'process' : 'power', choices: powerChoices(choice, shape) };
            await oracle.step({ type: 'crash' }, label);
          },
          null,
        );
        if (found !== null) return found;
      }
    }
    if (sampledHere) this.stats.sampledPoints++;
    else this.stats.exhaustedPoints++;
    return null;
  }

  /** One crash run: restore, crash as `crash` says, and unless the files were judged before, recover and finish. */
  private async crashRun(
    node: PrefixNode,
    judged: Set<string>,
    label: string,
    modeStats: ModeStats,
    choice: Choice,
    shape: ChoiceShape | null,
    crash: (oracle: Oracle, steps: ScenarioStep[]) => Promise<void>,
    inside: { op: SutOp; afterIo: number } | null,
  ): Promise<FoundFailure | null> {
    const sut = this.sut;
    this.stats.runs++;
    modeStats.runs++;
    const unopened = this.restoreAt(node);
    if (unopened !== null) return unopened;
    const oracle = this.oracleAt(node.model);
    const steps: ScenarioStep[] = [];
    const followUp: { powerLoss: PowerLossAfterRecovery | null } = { powerLoss: null };
    try {
      await crash(oracle, steps);
      const digest = sut.files.digest();
      // What recovery inherits is part of the crash state. Judging a state that
      // carries something also covers its files with nothing carried: the same
      // recovery, with the power loss after it on top.
      const carried = choice.mode === 'process' ? sut.carriedSignature() : '';
      const key = carried === '' ? digest : `${digest}|${carried}`;
      if (judged.has(key)) {
        this.stats.duplicates++;
        return null;
      }
      judged.add(key);
      judged.add(digest);
      this.stats.crashStates++;
      modeStats.states++;
      await this.recoverAndFinish(oracle, label, steps);
      const recovery = { path: sut.lastRecoveryPath, io: sut.lastRecoveryIo };
      if (carried !== '') await this.powerLossAfterRecovery(oracle, label, steps, followUp);
      // A path is crashed once per kind of prefix state: the same calls over an empty or a full map differ.
      if (this.recoveryCrashes.wants(`${rotKind(node.model, this.activeRegions)}|${recovery.path}`)) {
        const found = await crashRecoveries(this, {
          node,
          label,
          choice,
          shape,
          crash,
          inside,
          recoveryIo: recovery.io,
        });
        if (found !== null) return found;
      }
    } catch (error) {
      const found: FoundFailure = {
        error: asFailure(error, label),
        node,
        op: inside?.op ?? null,
        plainOp: null,
        crashAfterIo: inside?.afterIo ?? null,
        choice,
        shape: shape ?? sut.lastShape,
        steps,
      };
      return followUp.powerLoss === null ? found : { ...found, powerLoss: followUp.powerLoss };
    } finally {
      this.progress();
    }
    return null;
  }
}

/** Explores every crash state within the bounds; stops at the first failure and saves it as a trace. */
export async function exploreCrashes(options: ExplorationOptions): Promise<ExplorationResult> {
  const explorer = new Explorer(options);
  const found = await explorer.run();
  if (found === null) return { stats: explorer.stats, failure: null, covered: explorer.covered };
  const failure = await traceOfFailure(explorer, found, options);
  return { stats: explorer.stats, failure, covered: explorer.covered };
}
