// What a crash of the crash layer (harness/crash/crashStorage.ts) did: the report of
// every unsynced record it kept or dropped, the SimulatedCrash error that carries it
// out of a failpoint, and what a hand-over gave the storage recovery runs on.

import type { CrashMode } from '../types.ts';
import type { NamespaceKind } from './unsyncedRecords.ts';

export interface CrashReport {
  mode: CrashMode;
  torn: boolean;
  seed: number;
  /** ioCount when the crash happened. */
  ioCount: number;
  /**
   * `carried`: the record was handed over by a crashed process (present only then).
   * `sectorsTorn`: the sectors (indexes as in sectorsKept) torn inside by tearSector; their sectorsKept entry is false.
   */
  writes: Array<{
    index: number;
    path: string;
    position: number;
    length: number;
    kept: boolean;
    sectorsKept?: boolean[];
    sectorsTorn?: number[];
    carried?: true;
  }>;
  truncates: Array<{ index: number; path: string; length: number; kept: boolean; carried?: true }>;
  namespace: Array<{ index: number; kind: NamespaceKind; path: string; to?: string; kept: boolean; carried?: true }>;
}

/** A report with nothing decided yet: all a process crash has to say. */
export function emptyCrashReport(mode: CrashMode, torn: boolean, seed: number, ioCount: number): CrashReport {
  return { mode, torn, seed, ioCount, writes: [], truncates: [], namespace: [] };
}

/** What `handOverTo` gave the fresh storage. */
export interface HandOverReport {
  /** Unsynced writes now held by the fresh storage (0 after a power crash). */
  writeCount: number;
  /** Unsynced truncates now held by the fresh storage. */
  truncateCount: number;
  /** Non-durable namespace changes (mkdir, create, rename, unlink, rmdir) now held by the fresh storage. */
  namespaceCount: number;
}

export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
  constructor(
    message: string,
    readonly mode: CrashMode,
    readonly ioCount: number,
    /** What the crash kept and dropped; set on the error thrown by the crash itself. */
    readonly report: CrashReport | null,
  ) {
    super(message);
  }
}

export function isSimulatedCrash(error: unknown): error is SimulatedCrash {
  return error instanceof SimulatedCrash;
}
