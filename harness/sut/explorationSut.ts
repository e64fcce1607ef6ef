// The volume under the crash exploration (harness/exploration/explorer.ts): a
// VolumeSut on in-memory files under the real crash layer, with what the
// exploration needs beyond it: saving and restoring a prefix state (its files
// copied back, the volume reopened, its volatile sent set put back, the operations
// since replayed), and rot (a byte flipped in a synced file, behind the crash
// layer, as the device would). Anything the volume throws is a failure with its
// stack (throwsAreFailures), never a crash of the explorer.

import { MemoryStorage } from '../storage/memoryStorage.ts';
import type { PowerChoices } from '../crash/powerChoices.ts';
import type { VolumeClass } from '../types.ts';
import type { SutOp } from './systemUnderTest.ts';
import type { BetweenCrash, VolumeFiles } from './volumeSutOptions.ts';
import { VolumeSut } from './volumeSut.ts';

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

/** A saved prefix state: the nearest all-durable files, the sent set there, and the operations since. */
export interface Restore {
  readonly image: MemoryStorage;
  readonly sent: readonly number[];
  readonly replay: readonly SutOp[];
}

/** Where the volume lives in its in-memory files. */
export const volumeDir = '/volume';

/** `storage` as a volume's files: nothing to free. */
export function memoryFiles(storage: MemoryStorage): VolumeFiles<MemoryStorage> {
  return { storage, dir: volumeDir, dispose: () => {} };
}

export class ExplorationSut extends VolumeSut<MemoryStorage> {
  /** `crashChoices` and `betweenCrash` start as the given ones after create and restore (a rerun sets them). */
  constructor(name: string, volumeClass: VolumeClass, crashChoices: PowerChoices = {}, betweenCrash?: BetweenCrash) {
    super(restorableClass(volumeClass), {
      name,
      newFiles: () => memoryFiles(new MemoryStorage()),
      throwsAreFailures: true,
      crashChoices,
      ...(betweenCrash === undefined ? {} : { betweenCrash }),
    });
  }

  /** The open volume, with its sent set (the class is always the restorable one). */
  override get openVolume(): RestorableVolume {
    return super.openVolume as RestorableVolume;
  }

  sentRegions(): number[] {
    return this.openVolume.sentRegions();
  }

  /** Back to a saved prefix state: its files, a reopened volume, its sent set, and the replayed operations. */
  restore(saved: Restore): void {
    const storage = this.useFiles(memoryFiles(saved.image.clone()));
    (this.openNow() as RestorableVolume).restoreSent(saved.sent);
    for (const op of saved.replay) {
      const reply = this.applyNow(op);
      if (!reply.ok) throw new Error(`exploration: replaying ${op.type} to restore a prefix failed: ${reply.message}`);
    }
    storage.takeIoCount();
  }

  /**
   * Rot: flips a byte of a file behind the crash layer (the device's doing, with
   * nothing unsynced over it). Returns false when the file has no such byte.
   */
  rot(path: string, offset: number): boolean {
    return this.files.flipByte(path, offset);
  }
}
