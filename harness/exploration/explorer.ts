// Bounded exhaustive crash exploration: the entry of harness/exploration/. Every
// sequence of up to `length` operations on `regions` regions (writes of `values`
// labels to each region, startCycle, a transfer of each region, completeCycle;
// rejected ones included; operations.ts) is run on the
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
// and judged by the Oracle (judging.ts): the recovered state must be one that
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
// Beyond the operations, each in a file of this folder:
//   - crashes inside create, at each of its durable calls, in every mode
//     (createCrashes.ts), and create in a directory holding a user's files;
//   - crashes inside recovery, at each of its durable calls, and inside the
//     recovery after a kill inside one (recoveryCrashes.ts), for each distinct
//     recovery path and kind of prefix state;
//   - rot: a byte flipped in each structure of a synced file, then E_CORRUPT or
//     cycles that end with S = P (rot.ts, rotTargets.ts), and crashes inside
//     scrub --repair (scrubCrashes.ts);
//   - torn mode tears the volume's own records inside a sector (choices.ts);
//   - a wide geometry explored through a few of its regions (activeRegions).
// The crash layer (harness/crash/crashStorage.ts) makes names durable only by a
// sync of their directory, also across a kill: see its head for the model. An
// error the implementation throws is a failure with its stack, never a crash of
// the explorer.
// Cases trace format v1 cannot say are saved as text (failureTrace.ts).
//
// HOW IT IS MADE FAST
//
// - The volume lives on an in-memory Storage (MemoryStorage) under the real
//   crash layer (CrashStorage; harness/sut/explorationSut.ts): no file system,
//   no fsync, and a volume's files are copied in microseconds.
// - The prefix tree is enumerated breadth first, and prefixes are deduplicated
//   (prefixes.ts):
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
// - Within one (prefix, operation) pair (crashPoints.ts), a crash whose post-crash files equal
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
// finishing steps), through harness/scenario.ts, which records it as a v1 trace
// (failureTrace.ts).
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
import { cowIndexSize } from '../../impl/cowStore.ts';
import { isCowmapError } from '../../impl/errors.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { initialState } from '../../model/rules.ts';
import type { Geometry, ModelState } from '../../model/types.ts';
import type { UnsyncedWriteInfo } from '../crash/unsyncedRecords.ts';
import { MemoryStorage } from '../storage/memoryStorage.ts';
import { Oracle, OracleFailure } from '../oracle/oracle.ts';
import { ExplorationSut } from '../sut/explorationSut.ts';
import type { SutOp } from '../sut/systemUnderTest.ts';
import { asFailure } from '../sut/thrown.ts';
import { ContentBook } from '../trace/content.ts';
import { defaultNames } from '../trace/reader.ts';
import type { VolumeClass } from '../types.ts';
import type { ExplorationMode } from './choices.ts';
import { explorationModes } from './choices.ts';
import { crashBetween, crashInside } from './crashPoints.ts';
import { crashCreates } from './createCrashes.ts';
import type { ExplorationFailure } from './failureTrace.ts';
import { traceOfFailure } from './failureTrace.ts';
import type { FoundFailure } from './found.ts';
import { foundInWords } from './found.ts';
import { describeOp, explorationOps } from './operations.ts';
import type { ExplorationOptions } from './options.ts';
import { activeRegionsOf, checkExplorationOptions, explorationDefaults } from './options.ts';
import type { PrefixNode } from './prefixes.ts';
import { expand, prefixKey } from './prefixes.ts';
import { RecoveryCrashPlan } from './recoveryCrashes.ts';
import { exploreRot, richestFirst, rotKind } from './rot.ts';
import type { ExplorationStats } from './stats.ts';
import { emptyStats } from './stats.ts';

export interface ExplorationResult {
  readonly stats: ExplorationStats;
  readonly failure: ExplorationFailure | null;
  /** The statechart transition ids (model/transitions.ts) the explored steps took. */
  readonly covered: ReadonlySet<string>;
}

/** Explores every crash state within the bounds; stops at the first failure and saves it as a trace. */
export async function exploreCrashes(options: ExplorationOptions): Promise<ExplorationResult> {
  const explorer = new Explorer(options);
  const found = await explorer.run();
  if (found === null) return { stats: explorer.stats, failure: null, covered: explorer.covered };
  const failure = await traceOfFailure(explorer, found, options);
  return { stats: explorer.stats, failure, covered: explorer.covered };
}

/** Which unsynced writes torn mode also tears inside a sector: the volume's own records, not region data (see tearsAt). */
function tearableWrites(regions: number): (write: UnsyncedWriteInfo) => boolean {
  const indexBytes = cowIndexSize(regions);
  return (write) => {
    const name = posix.basename(write.path);
    return name !== 'primary' && name !== 'image' && !(name === 'cow' && write.position >= indexBytes);
  };
}

/** The state of one exploration, shared by the files of this folder; `run` explores. */
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
  private readonly opTexts = new Map<SutOp, string>();
  private readonly pathTexts = new Map<readonly SutOp[], string>();

  constructor(readonly options: ExplorationOptions) {
    checkExplorationOptions(options);
    this.activeRegions = activeRegionsOf(options);
    this.volumeClass = options.volumeClass ?? ReplicatedVolume;
    this.subsetBitsMax = options.subsetBitsMax ?? explorationDefaults.subsetBitsMax;
    this.samplesMax = options.samplesMax ?? explorationDefaults.samplesMax;
    const regionSize = options.regionSize ?? explorationDefaults.regionSize;
    this.modes = explorationModes.filter((mode) => (options.modes ?? explorationModes).includes(mode));
    this.geometry = { regions: options.regions, regionSize };
    this.book = new ContentBook(regionSize);
    this.names = defaultNames(options.regions);
    this.ops = explorationOps(options.regions, options.values, this.book, this.activeRegions);
    this.sut = new ExplorationSut(options.volumeName ?? 'the reference implementation', this.volumeClass);
    for (let depth = 1; depth <= options.length; depth++) this.stats.sequences += this.ops.length ** depth;
    this.recoveryCrashes = new RecoveryCrashPlan(options.recoveryPathsMax ?? explorationDefaults.recoveryPathsMax);
    this.tearable = options.byteTears === false ? null : tearableWrites(options.regions);
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
    const seen = new Set<string>([prefixKey(this, root.model, sut.files.digest(), [], true)]);
    this.stats.prefixes = 1;
    try {
      if (this.options.createCrashes !== false) {
        const inCreate = await crashCreates(this, root);
        if (inCreate !== null) return inCreate;
      }
      // Between-operation crashes of the root (a fresh volume).
      const found = (await crashBetween(this, root)) ?? (await this.explorePrefixes(root, seen));
      if (found !== null || this.options.rot === false) return found;
      const rotStatesMax = this.options.rotStatesMax ?? explorationDefaults.rotStatesMax;
      return await exploreRot(this, richestFirst([...this.rotNodes.values()]).slice(0, rotStatesMax));
    } finally {
      this.stats.seconds = (performance.now() - this.started) / 1000;
      await sut.close();
    }
  }

  /** The prefix tree breadth first: every operation from every distinct state, crashed inside and after. */
  private async explorePrefixes(root: PrefixNode, seen: Set<string>): Promise<FoundFailure | null> {
    let level: PrefixNode[] = [root];
    for (let depth = 0; depth < this.options.length && level.length > 0; depth++) {
      const next: PrefixNode[] = [];
      for (const node of level) {
        this.stats.expanded++;
        for (const op of this.ops) {
          const expanded = await expand(this, node, op, seen);
          if ('failure' in expanded) return expanded.failure;
          if (expanded.child !== null) {
            next.push(expanded.child);
            this.noteRotNode(expanded.child);
            const found = await crashBetween(this, expanded.child);
            if (found !== null) return found;
          }
          if (expanded.io !== null) {
            const found = await crashInside(this, node, op, expanded.io);
            if (found !== null) return found;
          }
        }
      }
      level = next;
    }
    return null;
  }

  /**
   * The fresh volume every prefix starts from. A create that throws, refuses, or
   * returns with anything unsynced (a power loss could undo part of an
   * acknowledged create) is a failure of the implementation, not of the explorer.
   */
  private async createRoot(rootModel: ModelState): Promise<FoundFailure | null> {
    const label = `create of ${this.geometry.regions} regions of ${this.geometry.regionSize} bytes`;
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
      const root: PrefixNode = {
        depth: 0,
        path: [],
        model: rootModel,
        restore: { image: new MemoryStorage(), sent: [], replay: [] },
      };
      return foundInWords(root, label, error);
    }
  }

  /** Keeps the first (shortest) prefix state of each kind whose files are all durable, for rot. */
  private noteRotNode(node: PrefixNode): void {
    if (node.restore.replay.length > 0) return;
    const kind = rotKind(node.model, this.activeRegions);
    if (!this.rotNodes.has(kind)) this.rotNodes.set(kind, node);
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
      const after = this.describePath(node.path);
      const failure = isCowmapError(error)
        ? new OracleFailure(
            'divergence',
            `reopening the volume after ${after} failed with ${error.code}: ${error.message}`,
          )
        : asFailure(error, `reopening the volume after ${after}`);
      return {
        error: failure,
        node,
        op: null,
        plainOp: null,
        crashAfterIo: null,
        choice: { mode: 'process', bits: null, seed: 0 },
        shape: null,
        steps: [{ kind: 'crash' }, { kind: 'recover' }],
      };
    }
  }
}
