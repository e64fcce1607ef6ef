// The volume under exploration as a SystemUnderTest (harness/sut.ts), on the
// in-memory storage under the real crash layer, with what the exploration needs
// beyond the interface: explicit power-crash choices, saving and restoring a
// prefix state, crashes inside create and inside recovery, and rot (a byte
// flipped in a synced file, behind the crash layer, as the device would).

import { posix } from 'node:path';
import { isCowmapError } from '../../impl/errors.ts';
import type { Geometry } from '../../model/types.ts';
import { CrashStorage, isSimulatedCrash } from '../crashStorage.ts';
import type { ArmCrashOptions, PowerChoices, UnsyncedWriteInfo } from '../crashStorage.ts';
import { OracleFailure } from '../oracle.ts';
import { applyToVolume } from '../referenceSut.ts';
import type { CrashingReply, CrashRequest, Feature, SutOp, SutReply, SutState, SystemUnderTest } from '../sut.ts';
import { MemoryStorage } from './memoryStorage.ts';
import type { CrashMode, VolumeClass } from '../types.ts';

export type { VolumeClass } from '../types.ts';

/** The volume class under test, with access to its volatile sent set (for save and restore). */
export function restorableClass(base: VolumeClass) {
  return class RestorableVolume extends base {
    sentRegions(): number[] {
      return this.sent.regionsSet();
    }
    restoreSent(regions: readonly number[]): void {
      for (const region of regions) this.sent.set(region);
    }
  };
}

export type RestorableVolume = InstanceType<ReturnType<typeof restorableClass>>;

/** What a power crash at a crash point can keep or drop. */
export interface ChoiceShape {
  readonly writes: readonly UnsyncedWriteInfo[];
  readonly truncates: number;
  readonly namespace: number;
}

/** A saved prefix state: the nearest all-durable files, the sent set there, and the operations since. */
export interface Restore {
  readonly image: MemoryStorage;
  readonly sent: readonly number[];
  readonly replay: readonly SutOp[];
}

export interface BetweenCrash {
  readonly mode: CrashMode;
  readonly choices: PowerChoices;
}

export const volumeDir = '/volume';

/** What a power crash of `storage` now could keep or drop. */
function shapeOf(storage: CrashStorage): ChoiceShape {
  return {
    writes: storage.unsyncedWrites(),
    truncates: storage.unsyncedTruncateCount(),
    namespace: storage.unsyncedNamespaceCount(),
  };
}

/** The volume in memory as a SystemUnderTest, with explicit crash choices and save/restore. */
export class ExplorationSut implements SystemUnderTest {
  readonly features: ReadonlySet<Feature> = new Set<Feature>(['failpoint', 'power-loss', 'torn']);
  private readonly volumeClass: ReturnType<typeof restorableClass>;
  private memory: MemoryStorage | null = null;
  private storage: CrashStorage | null = null;
  private volume: RestorableVolume | null = null;
  /** Explicit choices for the next crash inside an operation (they replace the seeded coins). */
  crashChoices: PowerChoices = {};
  /** How the next crash between operations happens. */
  betweenCrash: BetweenCrash = { mode: 'process', choices: {} };
  /** What was unsynced at the last crash inside an operation. */
  lastShape: ChoiceShape | null = null;
  lastIoCount = 0;
  /** The durable calls of the last recovery (recover), in words: which path through recovery it took. */
  lastRecoveryPath = '';
  lastRecoveryIo = 0;

  /** `crashChoices` and `betweenCrash` start as these after create and restore (a rerun sets them). */
  constructor(
    readonly name: string,
    volumeClass: VolumeClass,
    private readonly initialCrashChoices: PowerChoices = {},
    private readonly initialBetweenCrash: BetweenCrash = { mode: 'process', choices: {} },
  ) {
    this.volumeClass = restorableClass(volumeClass);
  }

  private get open(): RestorableVolume {
    if (this.volume === null) throw new Error('exploration sut: the volume is not open');
    return this.volume;
  }

  private get crashStorage(): CrashStorage {
    if (this.storage === null) throw new Error('exploration sut: no storage');
    return this.storage;
  }

  get files(): MemoryStorage {
    if (this.memory === null) throw new Error('exploration sut: no files');
    return this.memory;
  }

  shape(): ChoiceShape {
    return shapeOf(this.crashStorage);
  }

  get isClean(): boolean {
    const storage = this.crashStorage;
    return storage.unsyncedWriteCount() + storage.unsyncedTruncateCount() + storage.unsyncedNamespaceCount() === 0;
  }

  sentRegions(): number[] {
    return this.open.sentRegions();
  }

  private reset(): void {
    this.crashChoices = this.initialCrashChoices;
    this.betweenCrash = this.initialBetweenCrash;
    this.lastShape = null;
  }

  async create(geometry: Geometry): Promise<void> {
    await this.close();
    this.reset();
    this.memory = new MemoryStorage();
    this.storage = new CrashStorage(this.memory);
    this.volume = this.guard('create', () => this.volumeClass.create(this.crashStorage, volumeDir, geometry));
    this.storage.takeIoCount();
  }

  /** Back to a saved prefix state: its files, a reopened volume, its sent set, and the replayed operations. */
  restore(saved: Restore): void {
    this.dropVolume();
    this.reset();
    this.memory = saved.image.clone();
    this.storage = new CrashStorage(this.memory);
    const volume = this.guard('open', () => this.volumeClass.open(this.crashStorage, volumeDir));
    this.volume = volume;
    volume.restoreSent(saved.sent);
    for (const op of saved.replay) {
      const reply = this.run(op);
      if (!reply.ok) throw new Error(`exploration: replaying ${op.type} to restore a prefix failed: ${reply.message}`);
    }
    this.storage.takeIoCount();
  }

  /** Anything but a rejection or a simulated crash that the volume throws is a failure of the implementation. */
  private guard<T>(what: string, body: () => T): T {
    try {
      return body();
    } catch (error) {
      if (isCowmapError(error) || isSimulatedCrash(error) || error instanceof OracleFailure) throw error;
      throw new OracleFailure('sut', `the implementation threw in ${what}: ${errorWithTrace(error)}`);
    }
  }

  private run(op: SutOp): SutReply {
    const volume = this.open;
    return this.guard(op.type, () => applyToVolume(volume, op));
  }

  async apply(op: SutOp): Promise<SutReply> {
    const reply = this.run(op);
    this.lastIoCount = this.crashStorage.takeIoCount();
    return { ...reply, io: this.lastIoCount };
  }

  async applyCrashing(op: SutOp, crash: CrashRequest): Promise<CrashingReply> {
    const storage = this.crashStorage;
    storage.armCrash({
      seed: crash.seed,
      torn: crash.torn,
      ...this.crashChoices,
      afterIo: crash.afterIo,
      mode: crash.mode,
    });
    try {
      const reply = this.run(op);
      // A crash due right after the operation's last I/O call comes before its answer.
      storage.crashIfDue();
      storage.disarm();
      this.lastIoCount = storage.takeIoCount();
      return { crashed: false, reply: { ...reply, io: this.lastIoCount } };
    } catch (error) {
      if (!isSimulatedCrash(error)) throw error;
      // The dead layer still holds what was unsynced at the crash (a process crash undoes nothing).
      this.lastShape = shapeOf(storage);
      this.volume = null;
      return { crashed: true };
    }
  }

  /** state() never rejects: a CowmapError from it is a failure too (rot checks call the volume itself). */
  async state(): Promise<SutState> {
    const volume = this.open;
    return this.guard('state', () => {
      try {
        return volume.state();
      } catch (error) {
        if (isCowmapError(error)) throw new OracleFailure('sut', `state() failed with ${error.code}: ${error.message}`);
        throw error;
      }
    });
  }

  async crash(): Promise<void> {
    if (this.storage !== null && !this.storage.isCrashed)
      this.storage.crashNow(this.betweenCrash.mode, this.betweenCrash.choices);
    this.volume = null;
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
   * Runs `body` (create or open) with a crash armed as `arm` says, on `storage`:
   * crashed, or the reply (a rejection as a reply).
   */
  private runArmed(
    storage: CrashStorage,
    arm: ArmCrashOptions | null,
    what: string,
    body: () => RestorableVolume,
  ): CrashingReply {
    if (arm !== null) storage.armCrash(arm);
    try {
      this.volume = this.guard(what, body);
      storage.crashIfDue();
      storage.disarm();
      this.lastIoCount = storage.takeIoCount();
      return { crashed: false, reply: { ok: true, io: this.lastIoCount } };
    } catch (error) {
      if (isSimulatedCrash(error)) {
        this.lastShape = shapeOf(storage);
        this.volume = null;
        return { crashed: true };
      }
      storage.disarm();
      if (isCowmapError(error))
        return { crashed: false, reply: { ok: false, code: error.code, message: error.message } };
      throw error;
    }
  }

  /** create on fresh files with a crash armed (null: none): a crash inside create. */
  createCrashing(geometry: Geometry, arm: ArmCrashOptions | null): CrashingReply {
    this.dropVolume();
    this.reset();
    this.memory = new MemoryStorage();
    const storage = new CrashStorage(this.memory);
    this.storage = storage;
    return this.runArmed(storage, arm, 'create', () => this.volumeClass.create(storage, volumeDir, geometry));
  }

  /** create over `files` as they are (a directory a user prepared), on a fresh crash layer. */
  createOver(files: MemoryStorage, geometry: Geometry): SutReply {
    this.dropVolume();
    this.reset();
    this.memory = files;
    const storage = new CrashStorage(files);
    this.storage = storage;
    const result = this.runArmed(storage, null, 'create', () => this.volumeClass.create(storage, volumeDir, geometry));
    if (result.crashed) throw new Error('exploration: create crashed with no crash armed');
    return result.reply;
  }

  /** create again over the files there are (after a crash, or after open said E_NOT_FOUND). */
  createAgain(geometry: Geometry): SutReply {
    const storage = this.recoveryStorage();
    const result = this.runArmed(storage, null, 'create', () => this.volumeClass.create(storage, volumeDir, geometry));
    if (result.crashed) throw new Error('exploration: create crashed with no crash armed');
    return result.reply;
  }

  /** Recovery (open) with a crash armed inside it: a crash inside recovery. */
  recoverCrashing(arm: ArmCrashOptions): CrashingReply {
    const storage = this.recoveryStorage();
    return this.runArmed(storage, arm, 'open', () => this.volumeClass.open(storage, volumeDir));
  }

  /**
   * Rot: flips a byte of a file behind the crash layer (the device's doing, with
   * nothing unsynced over it). Returns false when the file has no such byte.
   */
  rot(path: string, offset: number): boolean {
    return this.files.flipByte(path, offset);
  }

  /**
   * Runs `body` on the open volume with a crash armed (null: none): crashed, or
   * its durable call count. Errors, CowmapErrors included, are thrown as they are.
   */
  runCrashing(
    arm: ArmCrashOptions | null,
    body: (volume: RestorableVolume) => unknown,
  ): { crashed: true } | { crashed: false; io: number } {
    const storage = this.crashStorage;
    const volume = this.open;
    storage.takeIoCount();
    if (arm !== null) storage.armCrash(arm);
    try {
      body(volume);
      storage.crashIfDue();
      storage.disarm();
      return { crashed: false, io: storage.takeIoCount() };
    } catch (error) {
      storage.disarm();
      if (!isSimulatedCrash(error)) throw error;
      this.lastShape = shapeOf(storage);
      this.volume = null;
      return { crashed: true };
    }
  }

  /**
   * `cowmap scrub DIR --repair` on the files as they are (the volume closed:
   * after a crash, or refused by open), with a crash armed (null: none).
   * Crashed, or its durable call count; a CowmapError is thrown as it is.
   */
  scrubDirCrashing(arm: ArmCrashOptions | null): { crashed: true } | { crashed: false; io: number } {
    this.dropOpenVolume();
    const storage = this.recoveryStorage();
    storage.takeIoCount();
    if (arm !== null) storage.armCrash(arm);
    const volumeClass = this.volumeClass as unknown as {
      scrubDir(storage: CrashStorage, dir: string, options: { repair: boolean }): unknown;
    };
    try {
      this.guard('scrubDir', () => volumeClass.scrubDir(storage, volumeDir, { repair: true }));
      storage.crashIfDue();
      storage.disarm();
      return { crashed: false, io: storage.takeIoCount() };
    } catch (error) {
      storage.disarm();
      if (!isSimulatedCrash(error)) throw error;
      this.lastShape = shapeOf(storage);
      return { crashed: true };
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

  /** The open volume itself, for the rot and scrub checks that call it directly. */
  get openVolume(): RestorableVolume {
    return this.open;
  }

  async recover(): Promise<SutReply> {
    const storage = this.recoveryStorage();
    storage.clearLog();
    const result = this.runArmed(storage, null, 'open', () => this.volumeClass.open(storage, volumeDir));
    if (result.crashed) throw new Error('exploration: recovery crashed with no crash armed');
    this.lastRecoveryIo = result.reply.ok ? (result.reply.io ?? 0) : 0;
    this.lastRecoveryPath = storage
      .takeLog()
      .map(
        (entry) =>
          `${entry.kind} ${posix.basename(entry.path)}${entry.position === undefined ? '' : `@${entry.position}`}`,
      )
      .join(', ');
    return result.reply;
  }

  /** Drops the volume and its in-memory files (closing it first when it can close). */
  private dropVolume(): void {
    this.dropOpenVolume();
    this.storage = null;
    this.memory = null;
  }

  async close(): Promise<void> {
    this.dropVolume();
  }
}

/** An error as text with the first frames of its stack: what a failure report shows of an unexpected throw. */
export function errorWithTrace(error: unknown, frames = 8): string {
  if (!(error instanceof Error)) return String(error);
  const stack = (error.stack ?? '')
    .split('\n')
    .filter((line) => line.trimStart().startsWith('at '))
    .slice(0, frames);
  return [`${error.name}: ${error.message}`, ...stack.map((line) => `    ${line.trim()}`)].join('\n');
}
