// What a VolumeSut (volumeSut.ts) is made with: the volume's files, how crashes
// between operations happen, what a power crash may keep, and its options.

import type { Storage } from '../../impl/storage.ts';
import type { PowerChoices } from '../crash/powerChoices.ts';
import type { UnsyncedWriteInfo } from '../crash/unsyncedRecords.ts';
import type { CrashMode } from '../types.ts';

/** A volume's files: the storage under the crash layer (the device) and the volume's directory on it. */
export interface VolumeFiles<S extends Storage> {
  readonly storage: S;
  readonly dir: string;
  /** Frees them (a temporary directory is removed); called once the volume is closed. */
  dispose(): void;
}

/** What a power crash at a crash point can keep or drop. */
export interface ChoiceShape {
  readonly writes: readonly UnsyncedWriteInfo[];
  readonly truncates: number;
  readonly namespace: number;
}

/** How a crash between operations happens. */
export interface BetweenCrash {
  readonly mode: CrashMode;
  readonly choices: PowerChoices;
}

export interface VolumeSutOptions<S extends Storage> {
  readonly name: string;
  /** Fresh files for each create. */
  readonly newFiles: () => VolumeFiles<S>;
  /**
   * Whether anything the volume throws, but a rejection or a simulated crash, is an
   * OracleFailure with its stack (a rejection from state() too), so that the run
   * reports it as a failure; otherwise it propagates as thrown (default false).
   */
  readonly throwsAreFailures?: boolean;
  /** What `crashChoices` and `betweenCrash` are after each create and restore (a rerun of a found failure sets them). */
  readonly crashChoices?: PowerChoices;
  readonly betweenCrash?: BetweenCrash;
  /**
   * Every volume created keeps a consistent image (a `consistent:` secondary,
   * impl/receive/receiverReplica.ts, beside the volume's directory), and state()
   * reports it (docs/protocol.md section 10); without it, only a create that asks
   * for one (CreateChoice) makes one.
   */
  readonly consistent?: boolean;
}
