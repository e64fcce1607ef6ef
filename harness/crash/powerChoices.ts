// How a power crash of the crash layer (harness/crash/crashStorage.ts) picks what
// survives: a seed for its coins, or explicit choices per category that replace
// them (so that a bounded exhaustive explorer can try every subset), and the
// failpoint that crashes after the k-th durable call with those choices.
//
// How the seed picks outcomes: a Prng (harness/prng.ts) seeded with `seed`
// (default 0) draws one fair coin per unsynced write in the order the writes were
// made (torn: one per covered sector, first sector first), then one per unsynced
// truncate in order, then one per non-durable namespace operation in order.
// Writes, truncates and namespace changes carried over from a killed process
// ("What a recovery inherits" in crashStorage.ts) are older than the storage's
// own: they come first in their category, in the order the killed process made
// them (index 0 is the oldest carried one). The explicit choices `keepWrite`,
// `keepSector`, `keepTruncate`, `keepNamespace` replace the coins of their
// category (so a bounded exhaustive explorer can try every subset:
// `unsyncedWriteCount()` and friends tell how many choices there are). The same seed and the same sequence of calls (hand-overs
// included) give the same files.

import type { CrashMode } from '../types.ts';

/** Explicit choices replace the seeded coins of their category. */
export interface PowerChoices {
  seed?: number;
  torn?: boolean;
  /** Whether unsynced write `index` (0 = oldest, see `unsyncedWrites()`) is kept. Torn: the default for its sectors. */
  keepWrite?: (index: number) => boolean;
  /** Torn only: whether sector `sectorIndex` (0 = the write's first covered sector) of write `writeIndex` is kept. */
  keepSector?: (writeIndex: number, sectorIndex: number) => boolean;
  /**
   * Torn only, explicit: tears sector `sectorIndex` of write `writeIndex` INSIDE the
   * sector, byte by byte. Returns, for the bytes of that sector the write covers
   * (`byte` 0 = the first covered one), whether each keeps its new value; or null
   * to leave the sector to keepSector. Never drawn by the seeded coins: a seed
   * tears sector-wise only, so that saved v1 traces replay as they did.
   */
  tearSector?: (writeIndex: number, sectorIndex: number, coveredBytes: number) => ((byte: number) => boolean) | null;
  /** Whether unsynced truncate `index` (0 = oldest) is kept. */
  keepTruncate?: (index: number) => boolean;
  /** Whether non-durable namespace operation `index` (0 = oldest) is kept (before dependency closure). */
  keepNamespace?: (index: number) => boolean;
}

export interface ArmCrashOptions extends PowerChoices {
  /** Crash right after the afterIo-th durable call from now; 0: before the first. */
  afterIo: number;
  mode: CrashMode;
}
