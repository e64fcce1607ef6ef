// One volume in this process as a SystemUnderTest (systemUnderTest.ts): a
// ReplicatedVolume, or a subclass of it (a planted mutant, the exploration's
// restorable volume), over the crash-simulating storage layer
// (harness/crash/crashStorage.ts), on the files a factory gives it: real files
// in a temporary directory (referenceSut.ts) or in memory (explorationSut.ts).
//
// The harness can crash it after any durable I/O call of an operation, of create,
// of a recovery or of scrub --repair, in process, power or torn mode, with the
// crash layer's seeded coins or with explicit choices. A kill leaves its unsynced
// writes and names in the page cache, still not durable: the recovery after a
// process crash runs on a crash layer that inherits them (CrashStorage.handOverTo),
// so that a later power crash can take back what recovery did not sync (a power
// crash hands over nothing).

import { posix } from 'node:path';
import { isCowmapError } from '../../impl/errors.ts';
import type { CreateOptions, ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import type { Storage } from '../../impl/storage.ts';
import type { Geometry } from '../../model/types.ts';
import { isSimulatedCrash } from '../crash/crashReport.ts';
import { CrashStorage } from '../crash/crashStorage.ts';
import type { IoLogEntry } from '../crash/ioLog.ts';
import type { ArmCrashOptions, PowerChoices } from '../crash/powerChoices.ts';
import { OracleFailure } from '../oracle/oracle.ts';
import type { VolumeClass } from '../types.ts';
import { applyToVolume } from './applyToVolume.ts';
import type {
  CrashingReply,
  CrashRequest,
  CreateChoice,
  Feature,
  SutOp,
  SutReply,
  SutState,
  SystemUnderTest,
} from './systemUnderTest.ts';
import { errorWithTrace } from './thrown.ts';
import { consistentDirOf, withConsistent } from './consistentImage.ts';
import type { BetweenCrash, ChoiceShape, VolumeFiles, VolumeSutOptions } from './volumeSutOptions.ts';

/** A call run with a crash armed: crashed, or what it returned and its durable call count. */
type Armed<T> = { readonly crashed: true } | { readonly crashed: false; readonly value: T; readonly io: number };

const processCrash: BetweenCrash = { mode: 'process', choices: {} };

/** What a power crash of `storage` now could keep or drop. */
function shapeOf(storage: CrashStorage): ChoiceShape {
  return {
    writes: storage.unsyncedWrites(),
    truncates: storage.unsyncedTruncateCount(),
    namespace: storage.unsyncedNamespaceCount(),
  };
}

/** The durable calls of a recovery, in words: which path through recovery it took. */
function pathOf(log: readonly IoLogEntry[]): string {
  return log
    .map(
      (entry) =>
        `${entry.kind} ${posix.basename(entry.path)}${entry.position === undefined ? '' : `@${entry.position}`}`,
    )
    .join(', ');
}

export class VolumeSut<S extends Storage = Storage> implements SystemUnderTest {
  readonly name: string;
  readonly features: ReadonlySet<Feature>;
  /** Explicit choices for the next crash inside an operation (they replace the seeded coins). */
  crashChoices: PowerChoices;
  /** How the next crash between operations happens. */
  betweenCrash: BetweenCrash;
  /** What was unsynced at the last crash inside a call. */
  lastShape: ChoiceShape | null = null;
  /** Durable I/O calls of the last operation (the adapter's `io`). */
  lastIoCount = 0;
  /** The durable calls of the last recovery (recover), in words. */
  lastRecoveryPath = '';
  lastRecoveryIo = 0;
  private volumeFiles: VolumeFiles<S> | null = null;
  private storage: CrashStorage | null = null;
  private volume: ReplicatedVolume | null = null;

  constructor(
    protected readonly volumeClass: VolumeClass,
    private readonly options: VolumeSutOptions<S>,
  ) {
    this.name = options.name;
    // Every feature: a create asked for a consistent image (CreateChoice) makes one.
    this.features = new Set<Feature>(['failpoint', 'power-loss', 'torn', 'consistent']);
    this.crashChoices = options.crashChoices ?? {};
    this.betweenCrash = options.betweenCrash ?? processCrash;
  }

  /** The storage under the crash layer. */
  get files(): S {
    if (this.volumeFiles === null) throw new Error(`volume sut ${this.name}: no files`);
    return this.volumeFiles.storage;
  }

  private get dir(): string {
    if (this.volumeFiles === null) throw new Error(`volume sut ${this.name}: no volume was created`);
    return this.volumeFiles.dir;
  }

  /** The crash layer the volume runs on now (tests read its I/O log). */
  get crashStorage(): CrashStorage {
    if (this.storage === null) throw new Error(`volume sut ${this.name}: no storage`);
    return this.storage;
  }

  /** The open volume itself, for the checks that call it directly (rot, scrub). */
  get openVolume(): ReplicatedVolume {
    if (this.volume === null) throw new Error(`volume sut ${this.name}: the volume is not open`);
    return this.volume;
  }

  /** What a power crash now could keep or drop. */
  shape(): ChoiceShape {
    return shapeOf(this.crashStorage);
  }

  /** Whether every write, truncate and name change so far is durable. */
  get isClean(): boolean {
    const storage = this.crashStorage;
    return storage.unsyncedWriteCount() + storage.unsyncedTruncateCount() + storage.unsyncedNamespaceCount() === 0;
  }

  /**
   * What a recovery now would inherit from a storage dead of a process crash ('' for
   * nothing): part of the crash state. Within one crash site, equal files and equal
   * unsynced write extents mean equal records (the calls between changed nothing).
   */
  carriedSignature(): string {
    const storage = this.crashStorage;
    if (!storage.isCrashed || storage.lastCrash?.mode !== 'process') return '';
    const writes = storage.unsyncedWrites().map((write) => `${write.path}@${write.position}+${write.length}`);
    const truncateCount = storage.unsyncedTruncateCount();
    const names = storage
      .unsyncedNamespace()
      .map((change) => `${change.kind} ${change.path}${change.to === undefined ? '' : ` ${change.to}`}`);
    return writes.length + truncateCount + names.length === 0
      ? ''
      : `carried ${writes.join(',')}, ${truncateCount} truncates, names ${names.join(',')}`;
  }

  /** Takes `files` as the volume's, on a fresh crash layer; the previous volume is closed and its files freed. */
  protected useFiles(files: VolumeFiles<S>): CrashStorage {
    this.dropVolume();
    this.crashChoices = this.options.crashChoices ?? {};
    this.betweenCrash = this.options.betweenCrash ?? processCrash;
    this.lastShape = null;
    this.volumeFiles = files;
    this.storage = new CrashStorage(files.storage);
    return this.storage;
  }

  /** Opens the volume on the files taken (useFiles), with nothing armed: a rejection is thrown. */
  protected openNow(): ReplicatedVolume {
    const storage = this.crashStorage;
    const volume = this.guard('open', () => this.volumeClass.open(storage, this.dir));
    this.volume = volume;
    return volume;
  }

  /** Whether the volume created last keeps a consistent image (the option, or the create's choice). */
  private consistent = false;

  /** The options of every create: the consistent secondary, with the feature. */
  private get createOptions(): CreateOptions {
    return this.consistent ? { consistentSecondaryDir: consistentDirOf(this.dir) } : {};
  }

  async create(geometry: Geometry, choice: CreateChoice = {}): Promise<void> {
    this.consistent = this.options.consistent === true || choice.consistent === true;
    const storage = this.useFiles(this.options.newFiles());
    this.volume = this.guard('create', () => this.volumeClass.create(storage, this.dir, geometry, this.createOptions));
    storage.takeIoCount();
  }

  /** The operation on the open volume, with nothing armed and its calls not counted (a replay counts them). */
  protected applyNow(op: SutOp): SutReply {
    const volume = this.openVolume;
    return this.guard(op.type, () => applyToVolume(volume, op));
  }

  async apply(op: SutOp): Promise<SutReply> {
    const reply = this.applyNow(op);
    this.lastIoCount = this.crashStorage.takeIoCount();
    return { ...reply, io: this.lastIoCount };
  }

  async applyCrashing(op: SutOp, crash: CrashRequest): Promise<CrashingReply> {
    const arm = { seed: crash.seed, torn: crash.torn, ...this.crashChoices, afterIo: crash.afterIo, mode: crash.mode };
    const result = this.armed(this.crashStorage, arm, () => this.applyNow(op));
    if (result.crashed) return result;
    this.lastIoCount = result.io;
    return { crashed: false, reply: { ...result.value, io: result.io } };
  }

  async state(): Promise<SutState> {
    const volume = this.openVolume;
    return this.guard('state', () => withConsistent(volume, this.consistent), { rejects: false });
  }

  async crash(): Promise<void> {
    if (this.storage !== null && !this.storage.isCrashed)
      this.storage.crashNow(this.betweenCrash.mode, this.betweenCrash.choices);
    this.volume = null;
  }

  async recover(): Promise<SutReply> {
    const storage = this.recoveryStorage();
    storage.clearLog();
    const reply = uncrashed(this.openArmed(storage, null, 'open', () => this.volumeClass.open(storage, this.dir)));
    this.lastRecoveryIo = reply.ok ? (reply.io ?? 0) : 0;
    this.lastRecoveryPath = pathOf(storage.takeLog());
    return reply;
  }

  async close(): Promise<void> {
    this.dropVolume();
  }

  /** create on fresh files with a crash armed (null: none): a crash inside create. */
  createCrashing(geometry: Geometry, arm: ArmCrashOptions | null): CrashingReply {
    const storage = this.useFiles(this.options.newFiles());
    return this.openArmed(storage, arm, 'create', () =>
      this.volumeClass.create(storage, this.dir, geometry, this.createOptions),
    );
  }

  /** create over `files` as they are (a directory a user prepared), on a fresh crash layer. */
  createOver(files: VolumeFiles<S>, geometry: Geometry): SutReply {
    const storage = this.useFiles(files);
    return uncrashed(
      this.openArmed(storage, null, 'create', () =>
        this.volumeClass.create(storage, this.dir, geometry, this.createOptions),
      ),
    );
  }

  /** create again over the files there are (after a crash, or after open said E_NOT_FOUND). */
  createAgain(geometry: Geometry): SutReply {
    const storage = this.recoveryStorage();
    return uncrashed(
      this.openArmed(storage, null, 'create', () =>
        this.volumeClass.create(storage, this.dir, geometry, this.createOptions),
      ),
    );
  }

  /** Recovery (open) with a crash armed inside it: a crash inside recovery. */
  recoverCrashing(arm: ArmCrashOptions): CrashingReply {
    const storage = this.recoveryStorage();
    return this.openArmed(storage, arm, 'open', () => this.volumeClass.open(storage, this.dir));
  }

  /**
   * Runs `body` on the open volume with a crash armed (null: none): crashed, or
   * its durable call count. Errors, CowmapErrors included, are thrown as they are.
   */
  runCrashing(
    arm: ArmCrashOptions | null,
    body: (volume: ReplicatedVolume) => unknown,
  ): { crashed: true } | { crashed: false; io: number } {
    const volume = this.openVolume;
    const result = this.armed(this.crashStorage, arm, () => body(volume));
    return result.crashed ? result : { crashed: false, io: result.io };
  }

  /**
   * `cowmap scrub DIR --repair` on the files as they are (the volume closed:
   * after a crash, or refused by open), with a crash armed (null: none).
   * Crashed, or its durable call count; a CowmapError is thrown as it is.
   */
  scrubDirCrashing(arm: ArmCrashOptions | null): { crashed: true } | { crashed: false; io: number } {
    this.dropOpenVolume();
    const storage = this.recoveryStorage();
    const scrub = () => this.volumeClass.scrubDir(storage, this.dir, { repair: true });
    const result = this.armed(storage, arm, () => this.guard('scrubDir', scrub));
    return result.crashed ? result : { crashed: false, io: result.io };
  }

  /**
   * Runs `body` with a crash armed as `arm` says (null: none) on `storage`: crashed,
   * or what `body` returned and its durable call count. Any other error is thrown.
   */
  private armed<T>(storage: CrashStorage, arm: ArmCrashOptions | null, body: () => T): Armed<T> {
    storage.takeIoCount();
    if (arm !== null) storage.armCrash(arm);
    try {
      const value = body();
      // A crash due right after the last durable call comes before the answer.
      storage.crashIfDue();
      storage.disarm();
      return { crashed: false, value, io: storage.takeIoCount() };
    } catch (error) {
      storage.disarm();
      if (!isSimulatedCrash(error)) throw error;
      // The dead layer still holds what was unsynced at the crash (a process crash undoes nothing).
      this.lastShape = shapeOf(storage);
      this.volume = null;
      return { crashed: true };
    }
  }

  /** create or open with a crash armed (null: none): crashed, or the reply (a rejection as a reply). */
  private openArmed(
    storage: CrashStorage,
    arm: ArmCrashOptions | null,
    what: 'create' | 'open',
    open: () => ReplicatedVolume,
  ): CrashingReply {
    try {
      const result = this.armed(storage, arm, () => this.guard(what, open));
      if (result.crashed) return result;
      this.volume = result.value;
      this.lastIoCount = result.io;
      return { crashed: false, reply: { ok: true, io: result.io } };
    } catch (error) {
      if (isCowmapError(error))
        return { crashed: false, reply: { ok: false, code: error.code, message: error.message } };
      throw error;
    }
  }

  /** The storage the next recovery runs on: a fresh one, inheriting from a storage dead of a kill. */
  private recoveryStorage(): CrashStorage {
    const crashed = this.storage;
    if (crashed !== null && !crashed.isCrashed) return crashed;
    this.storage = new CrashStorage(this.files);
    // A kill's unsynced writes and names stay unsynced for the recovery (a power crash hands over nothing).
    if (crashed !== null) crashed.handOverTo(this.storage);
    return this.storage;
  }

  /**
   * With throwsAreFailures, anything `body` throws but a rejection or a simulated
   * crash is a failure of the implementation; `rejects: false` makes a rejection one too.
   */
  private guard<T>(what: string, body: () => T, { rejects }: { rejects: boolean } = { rejects: true }): T {
    if (this.options.throwsAreFailures !== true) return body();
    try {
      return body();
    } catch (error) {
      if (isCowmapError(error) && !rejects)
        throw new OracleFailure('sut', `${what}() failed with ${error.code}: ${error.message}`);
      if (isCowmapError(error) || isSimulatedCrash(error) || error instanceof OracleFailure) throw error;
      throw new OracleFailure('sut', `the implementation threw in ${what}: ${errorWithTrace(error)}`);
    }
  }

  /** Closes the open volume, if any, keeping the files and the storage (a clean stop). */
  private dropOpenVolume(): void {
    if (this.volume !== null && this.storage !== null && !this.storage.isCrashed) {
      try {
        this.volume.close();
      } catch {
        /* a poisoned volume closes what it can */
      }
    }
    this.volume = null;
  }

  /** Closes the volume and frees its files. */
  private dropVolume(): void {
    this.dropOpenVolume();
    this.storage = null;
    this.volumeFiles?.dispose();
    this.volumeFiles = null;
  }
}

/** The reply of a call that had no crash armed: it cannot have crashed. */
function uncrashed(result: CrashingReply): SutReply {
  if (result.crashed) throw new Error('volume sut: a call crashed with no crash armed');
  return result.reply;
}
