// A crash-simulating Storage, in the manner of SQLite's test6.c crash VFS: it wraps
// a real Storage (node:fs, a double of harness/storage/, anything implementing
// impl/storage.ts), counts the durable I/O calls the volume makes, crashes after the
// k-th one or injects ENOSPC/EIO, and on a crash rewrites the real files to a state
// that the crash model of docs/protocol.md section 5 allows, through the wrapped
// Storage only. Its parts, in this folder: the unsynced state (unsyncedState.ts),
// a power crash made real (powerCrash.ts, with how the files are rebuilt), the
// hand-over to recovery (handOver.ts), the crash report (crashReport.ts).
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
//     `sectorSize` bytes (by default impl/geometry.ts's `sectorSize`), sectors
//     counted from file offset 0; a write covering part of a sector decides that
//     part as one unit. So a write leaves any sector-wise mix of old and new bytes. With the explicit choice
//     `tearSector` a sector is also torn INSIDE, byte by byte (any mix of old and
//     new bytes within it: the spec's torn model, docs/protocol.md section 5);
//     the seeded coins never tear inside a sector (trace format v1 names a seed,
//     and the traces saved before must replay the same).
//   - Synced writes and truncates are always kept, whatever the mode.
//   - The file length follows the kept writes and truncates: a dropped write past
//     the end does not extend the file; a kept write after a dropped one that had
//     extended the file leaves zeros (a hole) where the dropped one was.
//
// How the seed picks outcomes, and the explicit choices that replace it:
// harness/crash/powerChoices.ts.
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
// Limits: paths are compared after lexical normalization (crashPaths.ts), so the
// volume must name each file one way (not through symlinks, not once relative and
// once absolute). Unsynced state is held in memory within the bounds of the options;
// exceeding one throws an Error (a harness configuration problem, not a crash).
// Namespace dependency checks are quadratic in the number of non-durable namespace
// changes. A record remembers the directories to sync by their names when it was
// made: a directory renamed afterwards must be synced under its old name to count.
// Only changes made through this layer are tracked: files changed behind its back
// (the inner storage's own lock files, for one) are neither counted nor undone; the
// layer's own reads and rewrites are not counted. A write that the inner storage
// fails part-way (a real ENOSPC) is not recorded: a power crash leaves its bytes.

import { sectorSize as deviceSectorSize } from '../../impl/geometry.ts';
import type { FileHandle, Lock, LockOptions, OpenFileOptions, Storage } from '../../impl/storage.ts';
import type { DurableIoKind } from '../storage/storageCall.ts';
import type { CrashMode } from '../types.ts';
import { HeldByProcess } from './crashHandles.ts';
import { normalizePath } from './crashPaths.ts';
import { type CrashReport, emptyCrashReport, type HandOverReport, SimulatedCrash } from './crashReport.ts';
import { carryUnsynced } from './handOver.ts';
import { Failpoints } from './failpoints.ts';
import type { ArmFaultOptions } from './injectedFaults.ts';
import { type IoLogEntry, loggedCall } from './ioLog.ts';
import { materializePowerCrash } from './powerCrash.ts';
import type { ArmCrashOptions, PowerChoices } from './powerChoices.ts';
import type { UnsyncedNamespaceInfo, UnsyncedWriteInfo } from './unsyncedRecords.ts';
import { type UnsyncedBounds, UnsyncedState, unsyncedBounds } from './unsyncedState.ts';

export interface CrashStorageOptions extends Partial<UnsyncedBounds> {
  /** Entries kept in `log`; later ones are counted in `logDroppedCount`. */
  ioLogMax?: number;
  /** The atomic unit of the default model and the tearing unit of the torn model. */
  sectorSize?: number;
}

export class CrashStorage implements Storage {
  readonly inner: Storage;
  /** The report of this storage's crash, once it crashed. */
  lastCrash: CrashReport | null = null;
  /** @internal What a power crash may undo; the handles record into it. */
  readonly unsynced: UnsyncedState;

  private readonly failpoints: Failpoints;
  private readonly sectorSize: number;
  private crashed = false;
  private handedOver = false;
  /** @internal What the living process holds: closed and released by a crash. */
  readonly held = new HeldByProcess();

  constructor(inner: Storage, options: CrashStorageOptions = {}) {
    this.inner = inner;
    this.failpoints = new Failpoints(options.ioLogMax ?? 100_000);
    this.sectorSize = options.sectorSize ?? deviceSectorSize;
    if (!Number.isInteger(this.sectorSize) || this.sectorSize < 1) {
      throw new RangeError(`CrashStorage: sectorSize must be a positive integer, got ${this.sectorSize}`);
    }
    this.unsynced = new UnsyncedState(inner, unsyncedBounds(options));
  }

  /** Durable calls, in order; at most ioLogMax entries (see logDroppedCount). */
  get log(): IoLogEntry[] {
    return this.failpoints.ioLog.entries;
  }

  /** Entries not stored in `log` because it was full. */
  get logDroppedCount(): number {
    return this.failpoints.ioLog.droppedCount;
  }

  /** Durable I/O calls since construction. */
  get ioCount(): number {
    return this.failpoints.ioCount;
  }

  /** Durable I/O calls since the last take (or construction); resets that counter. */
  takeIoCount(): number {
    return this.failpoints.takeIoCount();
  }

  /** Returns the log and empties it (and its dropped count). */
  takeLog(): IoLogEntry[] {
    return this.failpoints.ioLog.take();
  }

  clearLog(): void {
    this.failpoints.ioLog.take();
  }

  get isCrashed(): boolean {
    return this.crashed;
  }

  /** Whether an armed crash has reached its point and waits for the next call. */
  get crashDue(): boolean {
    return !this.crashed && this.failpoints.crashDue;
  }

  /** How many unsynced writes a power crash now could keep or drop. */
  unsyncedWriteCount(): number {
    return this.unsynced.pending('write').length;
  }

  /** How many unsynced truncates a power crash now could keep or drop. */
  unsyncedTruncateCount(): number {
    return this.unsynced.pending('truncate').length;
  }

  /** How many non-durable creates, renames and unlinks a power crash now could undo. */
  unsyncedNamespaceCount(): number {
    return this.unsynced.namespaceRecords.length;
  }

  /** The non-durable namespace changes, indexed as `keepNamespace` sees them. */
  unsyncedNamespace(): UnsyncedNamespaceInfo[] {
    return this.unsynced.namespaceInfos();
  }

  /** The unsynced writes, indexed as `keepWrite` and `keepSector` see them. */
  unsyncedWrites(): UnsyncedWriteInfo[] {
    return this.unsynced.writeInfos(this.sectorSize);
  }

  /**
   * After a process crash: gives this dead storage's unsynced records to `fresh`,
   * the storage recovery runs on, as its oldest (harness/crash/handOver.ts); after
   * a power crash, nothing. Either way this storage then holds nothing. See "What a
   * recovery inherits" in the header.
   */
  handOverTo(fresh: CrashStorage): HandOverReport {
    if (!this.crashed)
      throw new Error('CrashStorage.handOverTo: only a crashed storage hands over (this one is alive)');
    if (this.handedOver) throw new Error('CrashStorage.handOverTo: this storage handed over already');
    const freshUnused = fresh.ioCount === 0 && fresh.unsynced.trackedFiles.size === 0 && fresh.held.handles.size === 0;
    if (fresh === this || fresh.crashed || !freshUnused) {
      throw new Error('CrashStorage.handOverTo: the receiving storage must be fresh (no call made, nothing tracked)');
    }
    this.handedOver = true;
    const report =
      this.lastCrash?.mode === 'process'
        ? carryUnsynced(this.unsynced, fresh.unsynced)
        : { writeCount: 0, truncateCount: 0, namespaceCount: 0 };
    this.unsynced.clear();
    return report;
  }

  armCrash(options: ArmCrashOptions): void {
    this.failpoints.armCrash(options);
  }

  armFault(options: ArmFaultOptions): void {
    this.failpoints.armFault(options);
  }

  /** Disarms the crash and the fault. */
  disarm(): void {
    this.failpoints.disarm();
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

  open(path: string, options: OpenFileOptions): FileHandle {
    const key = normalizePath(path);
    if (!options.create) {
      this.checkAlive();
      const innerHandle = this.inner.open(path, options);
      return this.held.handle(this, path, innerHandle, this.unsynced.adoptFile(key, false));
    }
    const entry = this.beginDurable('create', path, {});
    const innerHandle = loggedCall(entry, () => this.inner.open(path, options));
    return this.held.handle(this, path, innerHandle, this.unsynced.recordCreate(entry.seq, key));
  }

  exists(path: string): boolean {
    this.checkAlive();
    return this.inner.exists(path);
  }

  mkdir(path: string): void {
    this.directoryChange('mkdir', path, () => this.inner.mkdir(path));
  }

  rmdir(path: string): void {
    this.directoryChange('rmdir', path, () => this.inner.rmdir(path));
  }

  syncDir(path: string): void {
    const entry = this.beginDurable('syncDir', path, {});
    loggedCall(entry, () => this.inner.syncDir(path));
    this.unsynced.dirSynced(normalizePath(path));
  }

  rename(from: string, to: string): void {
    const entry = this.beginDurable('rename', from, { to });
    const fromKey = normalizePath(from);
    const toKey = normalizePath(to);
    if (fromKey === toKey) {
      loggedCall(entry, () => this.inner.rename(from, to));
      return;
    }
    // The before-image: a file (or empty directory) the rename replaces.
    const replacedContent = this.unsynced.captureIfFile(to);
    loggedCall(entry, () => this.inner.rename(from, to));
    this.unsynced.recordRename(entry.seq, fromKey, toKey, replacedContent);
  }

  unlink(path: string): void {
    const entry = this.beginDurable('unlink', path, {});
    const key = normalizePath(path);
    const content = this.unsynced.captureIfFile(path);
    loggedCall(entry, () => this.inner.unlink(path));
    if (content === null || content === 'directory') return;
    this.unsynced.recordUnlink(entry.seq, key, content);
  }

  list(path: string): string[] {
    this.checkAlive();
    return this.inner.list(path);
  }

  lock(dir: string, options?: LockOptions): Lock | null {
    this.checkAlive();
    const innerLock = this.inner.lock(dir, options);
    if (innerLock === null) return null;
    return this.held.lock(this, innerLock);
  }

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
    if (this.failpoints.crashReached) this.crashFromArm();
    return this.failpoints.count(kind, path, extra);
  }

  /** mkdir or rmdir: durable once its parent is synced. */
  private directoryChange(kind: 'mkdir' | 'rmdir', path: string, perform: () => void): void {
    const entry = this.beginDurable(kind, path, {});
    loggedCall(entry, perform);
    this.unsynced.recordDirectoryChange(kind, entry.seq, normalizePath(path));
  }

  private deadError(): SimulatedCrash {
    const mode = this.lastCrash?.mode ?? 'process';
    const message = `storage crashed (${mode}) at durable I/O call ${this.ioCount}; it is dead`;
    return new SimulatedCrash(message, mode, this.ioCount, null);
  }

  private crashFromArm(): never {
    const arm = this.failpoints.crashArm;
    if (arm === null) throw new Error('CrashStorage: no crash armed');
    const report = this.materializeCrash(arm.mode, arm);
    const message = `simulated ${arm.mode} crash after durable I/O call ${report.ioCount} (armed afterIo ${arm.afterIo})`;
    throw new SimulatedCrash(message, arm.mode, report.ioCount, report);
  }

  /**
   * The crash itself: the process is dead (handles closed, locks released) and, in
   * a power crash, the real files are rewritten to what the crash leaves. Called by
   * a due failpoint and by crashNow.
   */
  private materializeCrash(mode: CrashMode, choices: PowerChoices): CrashReport {
    this.crashed = true;
    this.failpoints.disarm();
    this.held.dropAll();
    const torn = mode === 'power' && choices.torn === true;
    const report = emptyCrashReport(mode, torn, choices.seed ?? 0, this.ioCount);
    this.lastCrash = report;
    if (mode === 'power') materializePowerCrash(this.unsynced, choices, report, this.sectorSize);
    return report;
  }
}
