// The reference implementation as a SystemUnderTest: a ReplicatedVolume (or a
// named broken variant of it) on real files in a temporary directory, over the
// crash-simulating storage layer, so that the harness can crash it after any
// durable I/O call, in process, power or torn mode. Recovery after a process
// crash runs on a storage that inherits the killed process's unsynced writes.

import { isCowmapError } from '../impl/errors.ts';
import { makeTemporaryDir, NodeStorage, removeTree } from '../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import type { Geometry } from '../model/types.ts';
import { CrashStorage, isSimulatedCrash } from './crashStorage.ts';
import type { CrashingReply, CrashRequest, Feature, SutOp, SutReply, SutState, SystemUnderTest } from './sut.ts';
import type { VolumeClass } from './types.ts';

export type { VolumeClass } from './types.ts';

export interface ReferenceSutOptions {
  /** The volume class: ReplicatedVolume, or a mutant subclass. */
  readonly volumeClass?: VolumeClass;
  readonly name?: string;
}

/** One operation on a volume, as the SystemUnderTest interface answers it: a rejection is a reply, not a throw. */
export function applyToVolume(volume: ReplicatedVolume, op: SutOp): SutReply {
  try {
    switch (op.type) {
      case 'write':
        volume.writeRegion(op.region, op.data);
        return { ok: true };
      case 'read':
        return { ok: true, data: volume.readRegion(op.region, op.volume) };
      case 'startCycle':
        volume.startCycle();
        return { ok: true };
      case 'transfer':
        volume.transfer(op.region);
        return { ok: true };
      case 'completeCycle':
        volume.completeCycle();
        return { ok: true };
    }
  } catch (error) {
    if (isCowmapError(error)) return { ok: false, code: error.code, message: error.message };
    throw error;
  }
}

export class ReferenceSut implements SystemUnderTest {
  readonly name: string;
  readonly features: ReadonlySet<Feature> = new Set<Feature>(['failpoint', 'power-loss', 'torn']);
  private readonly volumeClass: VolumeClass;
  private root: string | null = null;
  private storage: CrashStorage | null = null;
  private volume: ReplicatedVolume | null = null;
  /** Durable I/O calls of the last operation (the adapter's `io`). */
  lastIoCount = 0;

  constructor(options: ReferenceSutOptions = {}) {
    this.volumeClass = options.volumeClass ?? ReplicatedVolume;
    this.name = options.name ?? 'the reference implementation';
  }

  private get dir(): string {
    if (this.root === null) throw new Error('reference sut: no volume was created');
    return `${this.root}/volume`;
  }

  /** The storage layer, for tests that read its I/O log. */
  get crashStorage(): CrashStorage {
    if (this.storage === null) throw new Error('reference sut: no storage');
    return this.storage;
  }

  private get open(): ReplicatedVolume {
    if (this.volume === null) throw new Error('reference sut: the volume is not open');
    return this.volume;
  }

  async create(geometry: Geometry): Promise<void> {
    await this.close();
    this.root = makeTemporaryDir('cowmap-sut-');
    this.storage = new CrashStorage(new NodeStorage());
    this.volume = this.volumeClass.create(this.storage, this.dir, geometry);
    this.storage.takeIoCount();
  }

  private run(op: SutOp): SutReply {
    return applyToVolume(this.open, op);
  }

  async apply(op: SutOp): Promise<SutReply> {
    const reply = this.run(op);
    this.lastIoCount = this.crashStorage.takeIoCount();
    return { ...reply, io: this.lastIoCount };
  }

  async applyCrashing(op: SutOp, crash: CrashRequest): Promise<CrashingReply> {
    const storage = this.crashStorage;
    storage.armCrash({ afterIo: crash.afterIo, mode: crash.mode, seed: crash.seed, torn: crash.torn });
    try {
      const reply = this.run(op);
      // A crash due right after the operation's last I/O call comes before its answer.
      storage.crashIfDue();
      storage.disarm();
      this.lastIoCount = storage.takeIoCount();
      return { crashed: false, reply: { ...reply, io: this.lastIoCount } };
    } catch (error) {
      if (!isSimulatedCrash(error)) throw error;
      this.volume = null;
      return { crashed: true };
    }
  }

  async state(): Promise<SutState> {
    return this.open.state();
  }

  async crash(): Promise<void> {
    if (this.storage !== null && !this.storage.isCrashed) this.storage.crashNow('process');
    this.volume = null;
  }

  async recover(): Promise<SutReply> {
    const crashed = this.storage;
    this.storage = new CrashStorage(new NodeStorage());
    // A kill leaves its unsynced writes in the page cache, still not durable: the
    // recovery's storage inherits them, so that a later power crash can take back
    // what recovery did not sync (a power crash hands over nothing).
    if (crashed?.isCrashed) crashed.handOverTo(this.storage);
    try {
      this.volume = this.volumeClass.open(this.storage, this.dir);
    } catch (error) {
      if (isCowmapError(error)) return { ok: false, code: error.code, message: error.message };
      throw error;
    }
    this.lastIoCount = this.storage.takeIoCount();
    return { ok: true, io: this.lastIoCount };
  }

  async close(): Promise<void> {
    if (this.volume !== null) this.volume.close();
    this.volume = null;
    this.storage = null;
    if (this.root !== null) removeTree(this.root);
    this.root = null;
  }
}

export function createReferenceSut(options: ReferenceSutOptions = {}): SystemUnderTest {
  return new ReferenceSut(options);
}
