// A crash-simulating Storage, in the manner of SQLite's test6.c crash VFS: it wraps
// a real Storage (node:fs, or anything implementing impl/storage.ts), counts the
// durable I/O calls the volume makes, crashes after the k-th one or injects
// ENOSPC/EIO, and on a crash rewrites the real files to a state that the crash
// model of docs/protocol.md section 5 allows. It never touches files itself: every read
// (for before-images) and every rewrite goes through the wrapped Storage.
//
// THE CRASH MODEL, AS IMPLEMENTED
//
// Durable I/O calls (counted by `ioCount`, by failpoints and by faults; one each):
//   create (open with create: true), write, sync, truncate, rename, unlink, mkdir,
//   rmdir, syncDir. A call is counted when it is made, whether or not the wrapped storage
//   then fails it (EEXIST, ENOENT, ...): the system call was made. Not counted:
//   open without create, read, size, close, exists, list, lock, lock release.
//
// When data is durable:
//   - A write or truncate of a file is durable once a later `sync` of the same
//     file (through any handle of it) has returned. Until then it is "unsynced".
//   - A namespace change (mkdir, create, rename, unlink, rmdir) is durable once
//     every directory it touched (the parent of the path; for rename the parents
//     of both names) was synced by a later `syncDir`, and only then. Durability
//     never flows backwards: syncing a/b makes the entries IN a/b durable, not
//     a/b's own entry in a, so a power loss that drops the mkdir of a/b takes the
//     whole directory with it, files synced inside it included (POSIX fsync(2) on
//     a directory, and what ext4 without journal ordering does). A durable rmdir
//     makes the earlier, non-durable changes inside the removed directory moot.
//
// THE NAMESPACE MODEL (chosen as SQLite's test6.c chooses its device
// characteristics): a power loss keeps ANY subset of the non-durable namespace
// changes, per change, across and within directories, consistent with order only
// where names depend on each other: a change is kept only if every earlier
// non-durable change on the same name, an ancestor or a descendant is kept (a
// dropped mkdir drops the later creates inside it, a dropped create drops the
// later rename of that file, a dropped unlink drops a later rmdir of its
// directory). Changes to unrelated names are independent, even in one directory:
// no journal ordering is assumed, so a volume must not rely on one (e.g. on a
// rename of `meta` being durable because a later create in DIR was).
//
// What a crash may keep, drop or tear:
//   - process mode (kill): the operating system keeps everything that reached it.
//     Nothing is undone; open handles are closed and locks released.
//   - power mode: each unsynced write is kept whole or dropped whole (sectors are
//     atomic in the default model, and docs/protocol.md section 5 asks that a region write
//     leave the old or the new content); each unsynced truncate is kept or
//     dropped; each non-durable create/rename/unlink is kept or dropped, after
//     which every later non-durable namespace operation that depends on a dropped
//     one is dropped too (so a dropped create drops the later rename of that file).
//     A dropped create removes the file (even if its data was synced: the
//     directory entry was not); a dropped unlink brings the file back; a dropped
//     rename moves it back and brings back a file it had replaced (an empty
//     directory it replaced is made again); a dropped mkdir removes the directory
//     and everything in it; a dropped rmdir makes the (empty) directory again.
//   - power mode with torn: each unsynced write is kept or dropped per sector of
//     `sectorSize` bytes (default 512), sectors counted from file offset 0; a
//     write covering part of a sector decides that part as one unit. So a write
//     leaves any sector-wise mix of old and new bytes. With the explicit choice
//     `tearSector` a sector is also torn INSIDE, byte by byte (any mix of old and
//     new bytes within it: the spec's torn model, docs/protocol.md section 5);
//     the seeded coins never tear inside a sector (trace format v1 names a seed,
//     and the traces saved before must replay the same).
//   - Synced writes and truncates are always kept, whatever the mode.
//   - The file length follows the kept writes and truncates: a dropped write past
//     the end does not extend the file; a kept write after a dropped one that had
//     extended the file leaves zeros (a hole) where the dropped one was.
//
// How the files are rebuilt (power mode), with before-images: before every write
// the layer reads, through the wrapped storage, the bytes the write will
// overwrite and the file's length; before a shrinking truncate, the bytes it cuts
// off; before an unlink or a rename over a file, that file's whole content. At a
// crash it first undoes the dropped namespace operations, newest first, then for
// each surviving file undoes all its unsynced writes and truncates, newest first
// (restoring before-images and lengths), which gives its durable content, and
// re-applies the kept ones (or their kept sectors), oldest first. The files on
// disk are then the post-crash state before SimulatedCrash is thrown.
//
// How the seed picks outcomes: a Prng (harness/prng.ts) seeded with `seed`
// (default 0) draws one fair coin per unsynced write in the order the writes were
// made (torn: one per covered sector, first sector first), then one per unsynced
// truncate in order, then one per non-durable namespace operation in order.
// Writes, truncates and namespace changes carried over from a killed process
// ("What a recovery inherits" below) are older than the storage's own: they come
// first in their category, in the order the killed process made them (index 0 is the oldest
// carried one). The explicit choices `keepWrite`, `keepSector`, `keepTruncate`,
// `keepNamespace` replace the coins of their category (so a bounded exhaustive
// explorer can try every subset: `unsyncedWriteCount()` and friends tell how many
// choices there are). The same seed and the same sequence of calls (hand-overs
// included) give the same files.
//
// Failpoints: `armCrash({ afterIo: k })` crashes right after the k-th durable call
// from now: the next call on the storage or a handle (of any kind) throws
// SimulatedCrash without being performed. With k = 0 the crash is before the
// first durable call: calls that are not durable I/O still pass until then. If a
// request ends right after call k, the adapter calls `crashIfDue()` before
// answering (with k = 0 nothing is due until a durable call is attempted).
// After a crash every call on the storage, its handles and its locks throws
// SimulatedCrash; the harness recovers on a fresh CrashStorage over a fresh
// inner storage (over the same files), to which a storage dead of a PROCESS
// crash first hands its unsynced writes and truncates (see "What a recovery
// inherits" below; a power crash hands over nothing). `armFault({ afterIo: k,
// code })` makes the (k+1)-th durable call from now throw an Error with that
// `code` (as node:fs would) without performing it: a failed write writes
// nothing, a failed sync syncs nothing (its file's writes stay unsynced), a
// failed create creates nothing. The failed call is counted and logged with
// `error`. Once: the fault disarms itself.
//
// What a recovery inherits (`handOverTo`). A kill does not make the page cache
// durable (docs/protocol.md section 5, rule 4 then rule 2), so after a PROCESS crash the
// dead storage hands its unsynced writes and truncates, before-images included,
// AND its non-durable namespace changes (with the captured contents of files it
// unlinked or replaced), to the fresh CrashStorage that recovery runs on, before
// that one makes any call. There they are unsynced records like its own, only
// older: a later power crash of the fresh storage keeps, drops or tears (per
// sector) them exactly as it does its own, and a sync of the same file (or
// syncDir of the same directory) in the fresh storage makes them durable. So a
// recovery that trusts a namespace the killed process never made durable (a
// `meta` renamed into place, a directory made by create) and does not sync its
// directory loses it in the next power loss, as on a real machine. Each data
// record is filed under its file's path at the crash (after any rename). After a
// POWER crash nothing is carried: its unsynced data was kept or dropped already,
// and what it kept is on disk and counts as durable. The fresh storage's bounds
// apply to the carried records (exceeding one throws, as for its own). A storage
// hands over once, into a storage that has made no call yet, and then holds
// nothing. Carried records are handed on again by a second kill.
//
// Limits: paths are compared after lexical normalization (".", "..", repeated
// "/"), so the volume must name each file one way (not through symlinks, not
// once relative and once absolute). Unsynced state is held in memory, bounded by
// the options below; exceeding a bound throws an Error (a harness configuration
// problem, not a crash). Namespace dependency checks are quadratic in the number
// of non-durable namespace operations (bounded by namespaceRecordCountMax). A
// record remembers the directories to sync by their names when it was made: a
// directory renamed afterwards must be synced under its old name to count.
// Only changes made through this layer are tracked: files changed behind its
// back (the inner storage's own lock files, for one) are neither counted nor
// undone. The layer's own reads and rewrites go straight to the inner storage
// and are not counted. A write that the inner storage fails part-way (a real
// ENOSPC) is not recorded, so a power crash does not undo its partial bytes.

import type { FileHandle, Lock, LockOptions, OpenFileOptions, Storage } from '../impl/storage.ts';
import { Prng } from './prng.ts';
import { isSameOrAncestor, movedPath, normalizePath, parentDir } from './crash/crashPaths.ts';
import {
  carriedMark,
  coveredBytesOf,
  patched,
  recordBytes,
  recordNames,
  recordsDepend,
  resized,
  sectorCountOf,
  TrackedFile,
  undoData,
} from './crash/unsyncedRecords.ts';
import type {
  DataRecord,
  NamespaceKind,
  NamespaceRecord,
  ReplacedTarget,
  SectorChoice,
  TruncateRecord,
  WriteRecord,
} from './crash/unsyncedRecords.ts';

export { normalizePath, parentDir } from './crash/crashPaths.ts';
export type { NamespaceKind } from './crash/unsyncedRecords.ts';

import type { CrashMode } from './types.ts';

export type { CrashMode } from './types.ts';
export type DurableIoKind =
  | 'create'
  | 'write'
  | 'sync'
  | 'truncate'
  | 'rename'
  | 'unlink'
  | 'mkdir'
  | 'rmdir'
  | 'syncDir';
export type FaultCode = 'ENOSPC' | 'EIO';

export interface IoLogEntry {
  /** 1-based number of the durable call since construction (the `ioCount` it made). */
  seq: number;
  kind: DurableIoKind;
  /** The path as given (rename: the source). */
  path: string;
  /** rename: the destination. */
  to?: string;
  /** write: the file offset. */
  position?: number;
  /** write: bytes written; truncate: the new length. */
  length?: number;
  /** The error code when the call failed: an injected fault or the wrapped storage's error. */
  error?: string;
}

/** How a power crash picks what survives. Explicit choices replace the seeded coins of their category. */
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

export interface ArmFaultOptions {
  /** The (afterIo + 1)-th durable call from now fails. */
  afterIo: number;
  code: FaultCode;
}

export interface UnsyncedWriteInfo {
  index: number;
  path: string;
  position: number;
  length: number;
  /** How many sectors the write covers (its torn choice points). */
  sectorCount: number;
  /** Made by a crashed process and handed over (handOverTo): older than every write of this storage. */
  carried: boolean;
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

export interface CrashReport {
  mode: CrashMode;
  torn: boolean;
  seed: number;
  /** ioCount when the crash happened. */
  ioCount: number;
  /** `carried`: the record was handed over by a crashed process (present only then). */
  /** `sectorsTorn`: the sectors (indexes as in sectorsKept) torn inside by tearSector; their sectorsKept entry is false. */
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

export interface CrashStorageOptions {
  /** Entries kept in `log`; later ones are counted in `logDroppedCount`. */
  ioLogMax?: number;
  /** The atomic unit of the default model and the tearing unit of the torn model. */
  sectorSize?: number;
  /** Memory for unsynced data: copies of unsynced writes, before-images, captured contents. */
  unsyncedBytesMax?: number;
  /** Unsynced writes and truncates held at once, over all files. */
  unsyncedRecordCountMax?: number;
  /** Non-durable creates, renames and unlinks held at once. */
  namespaceRecordCountMax?: number;
  /** Files tracked at once (open, or with unsynced state). */
  trackedFileCountMax?: number;
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

function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

const faultErrno: Record<FaultCode, number> = { ENOSPC: -28, EIO: -5 };
const faultText: Record<FaultCode, string> = { ENOSPC: 'no space left on device', EIO: 'i/o error' };

function faultError(code: FaultCode, kind: DurableIoKind, path: string): Error {
  return Object.assign(new Error(`${code}: ${faultText[code]} (injected), ${kind} '${path}'`), {
    code,
    errno: faultErrno[code],
    syscall: kind,
    path,
  });
}

// ---------------------------------------------------------------------------

interface CrashArm extends ArmCrashOptions {
  /** The crash happens once ioCount reaches this. */
  atCount: number;
}

export class CrashStorage implements Storage {
  readonly inner: Storage;
  /** Durable calls, in order; at most ioLogMax entries (see logDroppedCount). */
  readonly log: IoLogEntry[] = [];
  /** Entries not stored in `log` because it was full. */
  logDroppedCount = 0;
  /** The report of this storage's crash, once it crashed. */
  lastCrash: CrashReport | null = null;

  private readonly ioLogMax: number;
  private readonly sectorSize: number;
  private readonly unsyncedBytesMax: number;
  private readonly unsyncedRecordCountMax: number;
  private readonly namespaceRecordCountMax: number;
  private readonly trackedFileCountMax: number;

  private ioCountTotal = 0;
  private ioCountSinceTake = 0;
  private crashed = false;
  private handedOver = false;
  private crashArm: CrashArm | null = null;
  private faultArm: { atCount: number; code: FaultCode } | null = null;

  private readonly openHandles = new Set<CrashFileHandle>();
  private readonly heldLocks = new Set<CrashLock>();
  /** Live tracked files by normalized path. */
  private readonly filesByPath = new Map<string, TrackedFile>();
  /** Every tracked file: live ones and restorable orphans. */
  private readonly trackedFiles = new Set<TrackedFile>();
  private namespaceRecords: NamespaceRecord[] = [];
  private unsyncedBytes = 0;
  private unsyncedRecordCount = 0;

  constructor(inner: Storage, options: CrashStorageOptions = {}) {
    this.inner = inner;
    this.ioLogMax = options.ioLogMax ?? 100_000;
    this.sectorSize = options.sectorSize ?? 512;
    this.unsyncedBytesMax = options.unsyncedBytesMax ?? 256 * 1024 * 1024;
    this.unsyncedRecordCountMax = options.unsyncedRecordCountMax ?? 1_000_000;
    this.namespaceRecordCountMax = options.namespaceRecordCountMax ?? 4096;
    this.trackedFileCountMax = options.trackedFileCountMax ?? 100_000;
    if (!Number.isInteger(this.sectorSize) || this.sectorSize < 1) {
      throw new RangeError(`CrashStorage: sectorSize must be a positive integer, got ${this.sectorSize}`);
    }
  }

  // ----- counters, log, state --------------------------------------------

  /** Durable I/O calls since construction. */
  get ioCount(): number {
    return this.ioCountTotal;
  }

  /** Durable I/O calls since the last take (or construction); resets that counter. */
  takeIoCount(): number {
    const count = this.ioCountSinceTake;
    this.ioCountSinceTake = 0;
    return count;
  }

  /** Returns the log and empties it (and its dropped count). */
  takeLog(): IoLogEntry[] {
    const entries = this.log.splice(0, this.log.length);
    this.logDroppedCount = 0;
    return entries;
  }

  clearLog(): void {
    this.takeLog();
  }

  get isCrashed(): boolean {
    return this.crashed;
  }

  /** Whether an armed crash has reached its point and waits for the next call. */
  get crashDue(): boolean {
    const arm = this.crashArm;
    return arm !== null && !this.crashed && this.ioCountTotal >= arm.atCount && arm.afterIo > 0;
  }

  /** How many unsynced writes a power crash now could keep or drop. */
  unsyncedWriteCount(): number {
    return this.collectPending('write').length;
  }

  /** How many unsynced truncates a power crash now could keep or drop. */
  unsyncedTruncateCount(): number {
    return this.collectPending('truncate').length;
  }

  /** How many non-durable creates, renames and unlinks a power crash now could undo. */
  unsyncedNamespaceCount(): number {
    return this.namespaceRecords.length;
  }

  /** The non-durable namespace changes, indexed as `keepNamespace` sees them. */
  unsyncedNamespace(): Array<{ index: number; kind: NamespaceKind; path: string; to?: string; carried: boolean }> {
    return this.namespaceRecords.map((record, index) =>
      record.kind === 'rename'
        ? { index, kind: record.kind, path: record.from, to: record.to, carried: record.carried }
        : { index, kind: record.kind, path: record.path, carried: record.carried },
    );
  }

  /** The unsynced writes, indexed as `keepWrite` and `keepSector` see them. */
  unsyncedWrites(): UnsyncedWriteInfo[] {
    return this.collectPending('write').map((record, index) => ({
      index,
      path: record.path,
      position: record.position,
      length: record.data.length,
      sectorCount: sectorCountOf(record.position, record.data.length, this.sectorSize),
      carried: record.carried,
    }));
  }

  // ----- recovery after a crash ------------------------------------------

  /**
   * After a process crash: gives this dead storage's unsynced writes and truncates
   * (their data and before-images) and its non-durable namespace changes (with the
   * contents of the files they unlinked or replaced) to `fresh`, the storage
   * recovery runs on, as its oldest unsynced records; a later power crash of
   * `fresh` may drop or tear them unless it synced their file or directory. After
   * a power crash it carries nothing (the crash already decided every unsynced
   * record). Either way this storage then holds nothing. See "What a recovery
   * inherits" in the header.
   */
  handOverTo(fresh: CrashStorage): HandOverReport {
    if (!this.crashed)
      throw new Error('CrashStorage.handOverTo: only a crashed storage hands over (this one is alive)');
    if (this.handedOver) throw new Error('CrashStorage.handOverTo: this storage handed over already');
    if (
      fresh === this ||
      fresh.crashed ||
      fresh.ioCountTotal > 0 ||
      fresh.trackedFiles.size > 0 ||
      fresh.openHandles.size > 0
    ) {
      throw new Error('CrashStorage.handOverTo: the receiving storage must be fresh (no call made, nothing tracked)');
    }
    this.handedOver = true;
    const copies = new Map<TrackedFile, TrackedFile>();
    const processCrash = this.lastCrash?.mode === 'process';
    const report: HandOverReport = { writeCount: 0, truncateCount: 0, namespaceCount: 0 };
    if (processCrash) {
      // Everything the dead process left unsynced moves over as it is: the files
      // (live ones and restorable orphans) with their unsynced records, and the
      // namespace records in their order, all older than anything fresh makes.
      const files = [...this.trackedFiles].filter((file) => file.state !== 'dead');
      const dataRecords = files.flatMap((file) => file.pending).sort((a, b) => a.seq - b.seq);
      const seqOf = new Map<DataRecord, number>(
        dataRecords.map((record, index) => [record, index - dataRecords.length]),
      );
      for (const file of files) {
        if (file.state === 'live' && file.pending.length > 0 && !fresh.inner.exists(file.path)) {
          throw new Error(
            `CrashStorage.handOverTo: ${file.path} holds unsynced data but is gone: files changed behind the crash layer between the crash and the hand-over`,
          );
        }
        const copy = new TrackedFile(file.path);
        copy.state = file.state;
        copy.content = file.content;
        copy.pending = file.pending.map((record) => ({
          ...record,
          seq: seqOf.get(record)!,
          path: file.path,
          carried: true,
        }));
        fresh.ensureTrackingRoom();
        fresh.trackedFiles.add(copy);
        if (copy.state === 'live') fresh.filesByPath.set(copy.path, copy);
        if (copy.content !== null) fresh.unsyncedBytes += copy.content.length;
        for (const record of copy.pending) {
          fresh.reserve(record);
          if (record.kind === 'write') report.writeCount++;
          else report.truncateCount++;
        }
        copies.set(file, copy);
      }
      fresh.checkBudget();
      this.namespaceRecords.forEach((record, index) => {
        const seq = index - this.namespaceRecords.length;
        const unsyncedDirs = new Set(record.unsyncedDirs);
        let copy: NamespaceRecord;
        if (record.kind === 'create' || record.kind === 'unlink')
          copy = { ...record, seq, unsyncedDirs, carried: true, file: copies.get(record.file)! };
        else if (record.kind === 'rename') {
          const replaced: ReplacedTarget =
            record.replaced?.kind === 'file'
              ? { kind: 'file', file: copies.get(record.replaced.file)! }
              : record.replaced;
          copy = { ...record, seq, unsyncedDirs, carried: true, replaced };
        } else copy = { ...record, seq, unsyncedDirs, carried: true };
        fresh.addNamespaceRecord(copy);
        report.namespaceCount++;
      });
    }
    for (const file of [...this.trackedFiles]) this.forget(file);
    this.namespaceRecords = [];
    return report;
  }

  // ----- failpoints and faults -------------------------------------------

  armCrash(options: ArmCrashOptions): void {
    if (!Number.isInteger(options.afterIo) || options.afterIo < 0) {
      throw new RangeError(`CrashStorage.armCrash: afterIo must be an integer >= 0, got ${options.afterIo}`);
    }
    this.crashArm = { ...options, atCount: this.ioCountTotal + options.afterIo };
  }

  armFault(options: ArmFaultOptions): void {
    if (!Number.isInteger(options.afterIo) || options.afterIo < 0) {
      throw new RangeError(`CrashStorage.armFault: afterIo must be an integer >= 0, got ${options.afterIo}`);
    }
    this.faultArm = { atCount: this.ioCountTotal + options.afterIo, code: options.code };
  }

  /** Disarms the crash and the fault. */
  disarm(): void {
    this.crashArm = null;
    this.faultArm = null;
  }

  /** Crashes now if an armed crash is due (its k-th call was made); throws SimulatedCrash then. */
  crashIfDue(): void {
    if (this.crashed) throw this.deadError();
    if (this.crashDue) this.crashFromArm();
  }

  /**
   * A crash between operations: the files become the post-crash state, the storage
   * is dead. Returns what was kept and dropped; does not throw (unless already crashed).
   */
  crashNow(mode: CrashMode, options: PowerChoices = {}): CrashReport {
    if (this.crashed) throw this.deadError();
    return this.materializeCrash(mode, options);
  }

  // ----- Storage ----------------------------------------------------------

  open(path: string, options: OpenFileOptions): FileHandle {
    const key = normalizePath(path);
    if (options.create) {
      const entry = this.beginDurable('create', path, {});
      const innerHandle = this.innerCall(entry, () => this.inner.open(path, options));
      const file = this.adoptFile(key, true);
      this.addNamespaceRecord({
        kind: 'create',
        seq: entry.seq,
        path: key,
        file,
        unsyncedDirs: new Set([parentDir(key)]),
        carried: false,
      });
      return this.wrapHandle(path, innerHandle, file);
    }
    this.checkAlive();
    const innerHandle = this.inner.open(path, options);
    return this.wrapHandle(path, innerHandle, this.adoptFile(key, false));
  }

  exists(path: string): boolean {
    this.checkAlive();
    return this.inner.exists(path);
  }

  mkdir(path: string): void {
    const entry = this.beginDurable('mkdir', path, {});
    this.innerCall(entry, () => this.inner.mkdir(path));
    const key = normalizePath(path);
    this.addNamespaceRecord({
      kind: 'mkdir',
      seq: entry.seq,
      path: key,
      unsyncedDirs: new Set([parentDir(key)]),
      carried: false,
    });
  }

  rmdir(path: string): void {
    const entry = this.beginDurable('rmdir', path, {});
    this.innerCall(entry, () => this.inner.rmdir(path));
    const key = normalizePath(path);
    this.addNamespaceRecord({
      kind: 'rmdir',
      seq: entry.seq,
      path: key,
      unsyncedDirs: new Set([parentDir(key)]),
      carried: false,
    });
  }

  syncDir(path: string): void {
    const entry = this.beginDurable('syncDir', path, {});
    this.innerCall(entry, () => this.inner.syncDir(path));
    const dir = normalizePath(path);
    for (const record of this.namespaceRecords) record.unsyncedDirs.delete(dir);
    this.pruneDurableNamespace();
  }

  rename(from: string, to: string): void {
    const entry = this.beginDurable('rename', from, { to });
    const fromKey = normalizePath(from);
    const toKey = normalizePath(to);
    if (fromKey === toKey) {
      this.innerCall(entry, () => this.inner.rename(from, to));
      return;
    }
    // The before-image: a file (or empty directory) the rename replaces.
    const replacedContent = this.captureIfFile(to);
    this.innerCall(entry, () => this.inner.rename(from, to));
    let replaced: ReplacedTarget = null;
    if (replacedContent === 'directory') {
      replaced = { kind: 'directory' };
    } else if (replacedContent !== null) {
      const file = this.adoptFile(toKey, false);
      this.orphan(file, replacedContent);
      replaced = { kind: 'file', file };
    }
    this.moveTracked(fromKey, toKey);
    this.addNamespaceRecord({
      kind: 'rename',
      seq: entry.seq,
      from: fromKey,
      to: toKey,
      replaced,
      unsyncedDirs: new Set([parentDir(fromKey), parentDir(toKey)]),
      carried: false,
    });
  }

  unlink(path: string): void {
    const entry = this.beginDurable('unlink', path, {});
    const key = normalizePath(path);
    const content = this.captureIfFile(path);
    this.innerCall(entry, () => this.inner.unlink(path));
    if (content === null || content === 'directory') return;
    const file = this.adoptFile(key, false);
    this.orphan(file, content);
    this.addNamespaceRecord({
      kind: 'unlink',
      seq: entry.seq,
      path: key,
      file,
      unsyncedDirs: new Set([parentDir(key)]),
      carried: false,
    });
  }

  list(path: string): string[] {
    this.checkAlive();
    return this.inner.list(path);
  }

  lock(dir: string, options?: LockOptions): Lock | null {
    this.checkAlive();
    const innerLock = this.inner.lock(dir, options);
    if (innerLock === null) return null;
    const lock = new CrashLock(this, innerLock);
    this.heldLocks.add(lock);
    return lock;
  }

  // ----- used by handles and locks ---------------------------------------

  /** @internal Throws SimulatedCrash if dead, or crashes if an armed crash is due. */
  checkAlive(): void {
    if (this.crashed) throw this.deadError();
    if (this.crashDue) this.crashFromArm();
  }

  /** @internal Counts a durable call; crashes or fails it when armed to. */
  beginDurable(
    kind: DurableIoKind,
    path: string,
    extra: { to?: string; position?: number; length?: number },
  ): IoLogEntry {
    if (this.crashed) throw this.deadError();
    const arm = this.crashArm;
    if (arm !== null && this.ioCountTotal >= arm.atCount) this.crashFromArm();
    const fault = this.faultArm;
    const faulted = fault !== null && this.ioCountTotal === fault.atCount;
    this.ioCountTotal++;
    this.ioCountSinceTake++;
    const entry: IoLogEntry = { seq: this.ioCountTotal, kind, path, ...extra };
    if (this.log.length < this.ioLogMax) this.log.push(entry);
    else this.logDroppedCount++;
    if (faulted) {
      this.faultArm = null;
      entry.error = fault.code;
      throw faultError(fault.code, kind, path);
    }
    return entry;
  }

  /** @internal Runs the wrapped call, noting its error code in the log entry. */
  innerCall<T>(entry: IoLogEntry, call: () => T): T {
    try {
      return call();
    } catch (error) {
      entry.error = errorCode(error) ?? 'ERROR';
      throw error;
    }
  }

  /** @internal */
  recordWrite(file: TrackedFile, handle: FileHandle, entry: IoLogEntry, position: number, data: Uint8Array): void {
    if (file.state === 'dead') {
      this.innerCall(entry, () => handle.write(position, data));
      return;
    }
    const lengthBefore = handle.size();
    const beforeLength = Math.max(0, Math.min(position + data.length, lengthBefore) - position);
    const before = beforeLength > 0 ? handle.read(position, beforeLength).slice() : new Uint8Array(0);
    const record: WriteRecord = {
      kind: 'write',
      seq: entry.seq,
      carried: false,
      path: handle.path,
      position,
      data: data.slice(),
      before,
      lengthBefore,
    };
    this.reserve(record);
    try {
      this.innerCall(entry, () => handle.write(position, data));
    } catch (error) {
      this.release(record);
      throw error;
    }
    file.pending.push(record);
    if (file.state === 'orphan' && file.content !== null) file.content = patched(file.content, position, data);
  }

  /** @internal */
  recordTruncate(file: TrackedFile, handle: FileHandle, entry: IoLogEntry, length: number): void {
    if (file.state === 'dead') {
      this.innerCall(entry, () => handle.truncate(length));
      return;
    }
    const lengthBefore = handle.size();
    const cut = length < lengthBefore ? handle.read(length, lengthBefore - length).slice() : new Uint8Array(0);
    const record: TruncateRecord = {
      kind: 'truncate',
      seq: entry.seq,
      carried: false,
      path: handle.path,
      length,
      lengthBefore,
      cut,
    };
    this.reserve(record);
    try {
      this.innerCall(entry, () => handle.truncate(length));
    } catch (error) {
      this.release(record);
      throw error;
    }
    file.pending.push(record);
    if (file.state === 'orphan' && file.content !== null) file.content = resized(file.content, length);
  }

  /** @internal A sync returned: every earlier write and truncate of the file is durable. */
  markSynced(file: TrackedFile): void {
    for (const record of file.pending) this.release(record);
    file.pending = [];
  }

  /** @internal */
  handleClosed(handle: CrashFileHandle, file: TrackedFile): void {
    if (this.openHandles.delete(handle)) file.handleCount--;
  }

  /** @internal */
  lockReleased(lock: CrashLock): void {
    this.heldLocks.delete(lock);
  }

  // ----- internals --------------------------------------------------------

  private deadError(): SimulatedCrash {
    const mode = this.lastCrash?.mode ?? 'process';
    return new SimulatedCrash(
      `storage crashed (${mode}) at durable I/O call ${this.ioCountTotal}; it is dead`,
      mode,
      this.ioCountTotal,
      null,
    );
  }

  private crashFromArm(): never {
    const arm = this.crashArm;
    if (arm === null) throw new Error('CrashStorage: no crash armed');
    const report = this.materializeCrash(arm.mode, arm);
    throw new SimulatedCrash(
      `simulated ${arm.mode} crash after durable I/O call ${report.ioCount} (armed afterIo ${arm.afterIo})`,
      arm.mode,
      report.ioCount,
      report,
    );
  }

  private wrapHandle(path: string, innerHandle: FileHandle, file: TrackedFile): FileHandle {
    const handle = new CrashFileHandle(this, path, innerHandle, file);
    this.openHandles.add(handle);
    file.handleCount++;
    return handle;
  }

  /** The live tracked file at `key`, made if needed; `fresh` replaces any stale one (a create). */
  private adoptFile(key: string, fresh: boolean): TrackedFile {
    const existing = this.filesByPath.get(key);
    if (existing !== undefined && !fresh) return existing;
    // A create succeeded where we tracked a file: that one went away behind our back.
    if (existing !== undefined) this.forget(existing);
    this.ensureTrackingRoom();
    const file = new TrackedFile(key);
    this.filesByPath.set(key, file);
    this.trackedFiles.add(file);
    return file;
  }

  private orphan(file: TrackedFile, content: Uint8Array): void {
    this.filesByPath.delete(file.path);
    file.state = 'orphan';
    file.content = content;
    this.unsyncedBytes += content.length;
    this.checkBudget();
  }

  private forget(file: TrackedFile): void {
    for (const record of file.pending) this.release(record);
    file.pending = [];
    if (file.content !== null) this.unsyncedBytes -= file.content.length;
    file.content = null;
    if (file.state === 'live' && this.filesByPath.get(file.path) === file) this.filesByPath.delete(file.path);
    file.state = 'dead';
    this.trackedFiles.delete(file);
  }

  /** Keeps the tracked-file set within its bound by forgetting files nothing refers to. */
  private ensureTrackingRoom(): void {
    if (this.trackedFiles.size < this.trackedFileCountMax) return;
    const referenced = new Set<TrackedFile>();
    for (const record of this.namespaceRecords) {
      if (record.kind === 'create' || record.kind === 'unlink') referenced.add(record.file);
      else if (record.kind === 'rename' && record.replaced?.kind === 'file') referenced.add(record.replaced.file);
    }
    for (const file of [...this.trackedFiles]) {
      if (file.state === 'live' && file.pending.length === 0 && file.handleCount === 0 && !referenced.has(file))
        this.forget(file);
    }
    if (this.trackedFiles.size >= this.trackedFileCountMax) {
      throw new Error(
        `CrashStorage: more than trackedFileCountMax = ${this.trackedFileCountMax} files tracked at once`,
      );
    }
  }

  private moveTracked(fromKey: string, toKey: string): void {
    const moved: TrackedFile[] = [];
    for (const [path, file] of this.filesByPath) {
      if (isSameOrAncestor(fromKey, path)) moved.push(file);
    }
    for (const file of moved) {
      this.filesByPath.delete(file.path);
      file.path = movedPath(file.path, fromKey, toKey);
    }
    for (const file of moved) this.filesByPath.set(file.path, file);
  }

  /** The whole content of `path` if it is a file, 'directory' if a directory, null if missing. */
  private captureIfFile(path: string): Uint8Array | 'directory' | null {
    if (!this.inner.exists(path)) return null;
    let handle: FileHandle;
    try {
      handle = this.inner.open(path, { create: false });
    } catch (error) {
      const code = errorCode(error);
      if (code === 'EISDIR') return 'directory';
      if (code === 'ENOENT') return null;
      throw error;
    }
    try {
      const size = handle.size();
      if (this.unsyncedBytes + size > this.unsyncedBytesMax) this.budgetError(size);
      return size > 0 ? handle.read(0, size).slice() : new Uint8Array(0);
    } finally {
      handle.close();
    }
  }

  private addNamespaceRecord(record: NamespaceRecord): void {
    if (this.namespaceRecords.length >= this.namespaceRecordCountMax) {
      throw new Error(
        `CrashStorage: more than namespaceRecordCountMax = ${this.namespaceRecordCountMax} creates, renames and unlinks without a syncDir`,
      );
    }
    this.namespaceRecords.push(record);
  }

  /**
   * Drops the records that are now durable: every directory they touched was
   * synced after them. Durability never flows back to an earlier record (see the
   * header: a synced file inside an unsynced new directory can still vanish with
   * it). A durable rmdir makes the earlier records inside the removed directory
   * moot: they are dropped with it.
   */
  private pruneDurableNamespace(): void {
    const kept: NamespaceRecord[] = [];
    const removedDirs: string[] = [];
    for (const record of this.namespaceRecords) {
      if (record.unsyncedDirs.size > 0) {
        kept.push(record);
        continue;
      }
      // A durable unlink or replacing rename: the old file is gone for good.
      if (record.kind === 'unlink') this.forget(record.file);
      else if (record.kind === 'rename' && record.replaced?.kind === 'file') this.forget(record.replaced.file);
      else if (record.kind === 'rmdir') removedDirs.push(record.path);
    }
    this.namespaceRecords = kept;
    if (removedDirs.length === 0) return;
    this.namespaceRecords = kept.filter((record) => {
      const inside = recordNames(record).every((name) =>
        removedDirs.some((dir) => name !== dir && isSameOrAncestor(dir, name)),
      );
      if (inside && record.kind === 'unlink') this.forget(record.file);
      return !inside;
    });
  }

  private reserve(record: DataRecord): void {
    if (this.unsyncedRecordCount + 1 > this.unsyncedRecordCountMax) {
      throw new Error(
        `CrashStorage: more than unsyncedRecordCountMax = ${this.unsyncedRecordCountMax} unsynced writes and truncates`,
      );
    }
    const bytes = recordBytes(record);
    if (this.unsyncedBytes + bytes > this.unsyncedBytesMax) this.budgetError(bytes);
    this.unsyncedRecordCount++;
    this.unsyncedBytes += bytes;
  }

  private release(record: DataRecord): void {
    this.unsyncedRecordCount--;
    this.unsyncedBytes -= recordBytes(record);
  }

  private checkBudget(): void {
    if (this.unsyncedBytes > this.unsyncedBytesMax) this.budgetError(0);
  }

  private budgetError(moreBytes: number): never {
    throw new Error(
      `CrashStorage: unsynced data would exceed unsyncedBytesMax = ${this.unsyncedBytesMax} bytes (held ${this.unsyncedBytes}, adding ${moreBytes})`,
    );
  }

  /** Unsynced records of one kind, over every restorable file, oldest first: the choice indexes. */
  private collectPending(kind: 'write'): WriteRecord[];
  private collectPending(kind: 'truncate'): TruncateRecord[];
  private collectPending(kind: 'write' | 'truncate'): DataRecord[] {
    const out: DataRecord[] = [];
    for (const file of this.trackedFiles) {
      if (file.state === 'dead') continue;
      for (const record of file.pending) if (record.kind === kind) out.push(record);
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /**
   * The crash itself: the process is dead (handles closed, locks released) and the
   * real files are rewritten to what the crash leaves. Called by a due failpoint
   * and by crashNow.
   */
  private materializeCrash(mode: CrashMode, choices: PowerChoices): CrashReport {
    this.crashed = true;
    this.crashArm = null;
    this.faultArm = null;
    // Errors closing or releasing are ignored: the process these belonged to is gone.
    for (const handle of this.openHandles) {
      try {
        handle.innerHandle.close();
      } catch {
        /* already closed */
      }
    }
    this.openHandles.clear();
    for (const lock of this.heldLocks) {
      try {
        lock.innerLock.release();
      } catch {
        /* already released */
      }
    }
    this.heldLocks.clear();

    const seed = choices.seed ?? 0;
    const torn = mode === 'power' && choices.torn === true;
    const report: CrashReport = {
      mode,
      torn,
      seed,
      ioCount: this.ioCountTotal,
      writes: [],
      truncates: [],
      namespace: [],
    };
    this.lastCrash = report;
    if (mode === 'process') return report;

    const prng = new Prng(seed);
    // 1. Choose. Writes and truncates are decided per record; namespace records
    //    are decided, then closed under dependency.
    const writes = this.collectPending('write');
    const truncates = this.collectPending('truncate');
    const writeKept = new Map<WriteRecord, SectorChoice | boolean>();
    writes.forEach((record, index) => {
      const position = record.position;
      const length = record.data.length;
      if (torn) {
        const sectorCount = sectorCountOf(position, length, this.sectorSize);
        const sectorsKept: boolean[] = [];
        const sectorsTorn: number[] = [];
        const byteMasks: Array<((byte: number) => boolean) | null> = [];
        for (let sector = 0; sector < sectorCount; sector++) {
          const mask =
            choices.tearSector?.(index, sector, coveredBytesOf(position, length, sector, this.sectorSize)) ?? null;
          byteMasks.push(mask);
          if (mask !== null) {
            sectorsTorn.push(sector);
            sectorsKept.push(false);
            continue;
          }
          sectorsKept.push(
            choices.keepSector !== undefined
              ? choices.keepSector(index, sector)
              : choices.keepWrite !== undefined
                ? choices.keepWrite(index)
                : prng.nextBool(),
          );
        }
        writeKept.set(record, { sectorsKept, byteMasks });
        const tornMark = sectorsTorn.length > 0 ? { sectorsTorn } : {};
        report.writes.push({
          index,
          path: record.path,
          position,
          length,
          kept: sectorsKept.every((kept) => kept),
          sectorsKept,
          ...tornMark,
          ...carriedMark(record),
        });
      } else {
        const kept = choices.keepWrite !== undefined ? choices.keepWrite(index) : prng.nextBool();
        writeKept.set(record, kept);
        report.writes.push({ index, path: record.path, position, length, kept, ...carriedMark(record) });
      }
    });
    const truncateKept = new Map<TruncateRecord, boolean>();
    truncates.forEach((record, index) => {
      const kept = choices.keepTruncate !== undefined ? choices.keepTruncate(index) : prng.nextBool();
      truncateKept.set(record, kept);
      report.truncates.push({ index, path: record.path, length: record.length, kept, ...carriedMark(record) });
    });
    const records = this.namespaceRecords;
    const namespaceKept = records.map((_, index) =>
      choices.keepNamespace !== undefined ? choices.keepNamespace(index) : prng.nextBool(),
    );
    for (let earlier = 0; earlier < records.length; earlier++) {
      if (namespaceKept[earlier]) continue;
      for (let later = earlier + 1; later < records.length; later++) {
        if (namespaceKept[later] && recordsDepend(records[earlier]!, records[later]!)) namespaceKept[later] = false;
      }
    }
    records.forEach((record, index) => {
      const kept = namespaceKept[index]!;
      const carried = record.carried ? { carried: true as const } : {};
      if (record.kind === 'rename')
        report.namespace.push({ index, kind: 'rename', path: record.from, to: record.to, kept, ...carried });
      else report.namespace.push({ index, kind: record.kind, path: record.path, kept, ...carried });
    });

    // 2. Undo the dropped namespace operations, newest first. Every later
    //    operation on the same names was dropped too, so each undo finds its names
    //    as the operation left them.
    for (let index = records.length - 1; index >= 0; index--) {
      if (!namespaceKept[index]) this.undoNamespace(records[index]!);
    }

    // 3. Rebuild each surviving file's data: undo every unsynced record, newest
    //    first (back to the durable content), then redo the kept ones, oldest first.
    for (const file of this.trackedFiles) {
      if (file.state !== 'live' || file.pending.length === 0) continue;
      const handle = this.inner.open(file.path, { create: false });
      try {
        for (let index = file.pending.length - 1; index >= 0; index--) undoData(handle, file.pending[index]!);
        for (const record of file.pending) {
          if (record.kind === 'truncate') {
            if (truncateKept.get(record) === true) handle.truncate(record.length);
            continue;
          }
          const kept = writeKept.get(record);
          if (kept === true) handle.write(record.position, record.data);
          else if (kept !== undefined && kept !== false) this.redoSectors(handle, record, kept);
        }
      } finally {
        handle.close();
      }
    }
    return report;
  }

  private undoNamespace(record: NamespaceRecord): void {
    switch (record.kind) {
      case 'create': {
        this.inner.unlink(record.path);
        const file = this.filesByPath.get(record.path);
        if (file !== undefined) {
          this.filesByPath.delete(record.path);
          file.state = 'dead';
        }
        record.file.state = 'dead';
        return;
      }
      case 'unlink':
        this.restoreOrphan(record.file, record.path);
        return;
      case 'mkdir':
        // The directory's own entry is lost: everything in it goes with it, durable or not.
        this.removeTree(record.path);
        return;
      case 'rmdir':
        this.inner.mkdir(record.path);
        return;
      case 'rename': {
        this.inner.rename(record.to, record.from);
        this.moveTracked(record.to, record.from);
        if (record.replaced?.kind === 'file') this.restoreOrphan(record.replaced.file, record.to);
        else if (record.replaced?.kind === 'directory') this.inner.mkdir(record.to);
        return;
      }
    }
  }

  /** Removes a directory and everything under it (through the wrapped storage), and forgets the files tracked there. */
  private removeTree(dir: string): void {
    if (!this.inner.exists(dir)) return;
    for (const name of this.inner.list(dir)) {
      const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
      try {
        this.inner.unlink(path);
      } catch (error) {
        const code = errorCode(error);
        if (code !== 'EISDIR' && code !== 'EPERM') throw error;
        this.removeTree(path);
      }
    }
    this.inner.rmdir(dir);
    for (const file of [...this.trackedFiles]) {
      if (file.state === 'live' && isSameOrAncestor(dir, file.path)) this.forget(file);
    }
  }

  private restoreOrphan(file: TrackedFile, path: string): void {
    const content = file.content ?? new Uint8Array(0);
    const handle = this.inner.open(path, { create: true });
    try {
      if (content.length > 0) handle.write(0, content);
    } finally {
      handle.close();
    }
    file.state = 'live';
    file.path = path;
    file.content = null;
    this.filesByPath.set(path, file);
  }

  private redoSectors(handle: FileHandle, record: WriteRecord, choice: SectorChoice): void {
    const end = record.position + record.data.length;
    const firstSector = Math.floor(record.position / this.sectorSize);
    choice.sectorsKept.forEach((kept, sector) => {
      const start = Math.max(record.position, (firstSector + sector) * this.sectorSize);
      const stop = Math.min(end, (firstSector + sector + 1) * this.sectorSize);
      const mask = choice.byteMasks[sector] ?? null;
      if (mask !== null) {
        // Torn inside the sector: each run of kept bytes is written as it was.
        let run = -1;
        for (let at = start; at <= stop; at++) {
          const keep = at < stop && mask(at - start);
          if (keep && run < 0) run = at;
          if (!keep && run >= 0) {
            handle.write(run, record.data.subarray(run - record.position, at - record.position));
            run = -1;
          }
        }
        return;
      }
      if (!kept) return;
      handle.write(start, record.data.subarray(start - record.position, stop - record.position));
    });
  }
}

class CrashFileHandle implements FileHandle {
  private closed = false;
  constructor(
    private readonly storage: CrashStorage,
    readonly path: string,
    readonly innerHandle: FileHandle,
    private readonly file: TrackedFile,
  ) {}

  read(position: number, length: number): Uint8Array {
    this.storage.checkAlive();
    return this.innerHandle.read(position, length);
  }

  write(position: number, data: Uint8Array): void {
    const entry = this.storage.beginDurable('write', this.path, { position, length: data.length });
    this.storage.recordWrite(this.file, this.innerHandle, entry, position, data);
  }

  sync(): void {
    const entry = this.storage.beginDurable('sync', this.path, {});
    this.storage.innerCall(entry, () => this.innerHandle.sync());
    this.storage.markSynced(this.file);
  }

  truncate(length: number): void {
    const entry = this.storage.beginDurable('truncate', this.path, { length });
    this.storage.recordTruncate(this.file, this.innerHandle, entry, length);
  }

  size(): number {
    this.storage.checkAlive();
    return this.innerHandle.size();
  }

  close(): void {
    this.storage.checkAlive();
    if (this.closed) {
      this.innerHandle.close(); // let the wrapped storage say what a double close does
      return;
    }
    this.closed = true;
    this.storage.handleClosed(this, this.file);
    this.innerHandle.close();
  }
}

class CrashLock implements Lock {
  constructor(
    private readonly storage: CrashStorage,
    readonly innerLock: Lock,
  ) {}

  release(): void {
    this.storage.checkAlive();
    this.storage.lockReleased(this);
    this.innerLock.release();
  }
}
