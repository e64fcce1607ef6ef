// What the crash layer (harness/crash/crashStorage.ts) holds between crashes: the
// tracked files with their unsynced writes and truncates, the non-durable namespace
// changes, and the memory they take, within the layer's bounds. It records a change
// when the layer makes one and forgets it when it becomes durable; a crash reads it
// (harness/crash/powerCrash.ts) and a hand-over moves it (harness/crash/handOver.ts).

import type { FileHandle, Storage } from '../../impl/storage.ts';
import { isSameOrAncestor, movedPath, parentDir } from './crashPaths.ts';
import { errorCode } from './injectedFaults.ts';
import {
  type DataRecord,
  type NamespaceRecord,
  patched,
  type ReplacedTarget,
  recordBytes,
  recordNames,
  resized,
  sectorCountOf,
  TrackedFile,
  type TruncateRecord,
  type UnsyncedNamespaceInfo,
  type UnsyncedWriteInfo,
  type WriteRecord,
} from './unsyncedRecords.ts';

export interface UnsyncedBounds {
  /** Memory for unsynced data: copies of unsynced writes, before-images, captured contents. */
  unsyncedBytesMax: number;
  /** Unsynced writes and truncates held at once, over all files. */
  unsyncedRecordCountMax: number;
  /** Non-durable creates, renames and unlinks held at once. */
  namespaceRecordCountMax: number;
  /** Files tracked at once (open, or with unsynced state). */
  trackedFileCountMax: number;
}

/** The bounds given, each missing one at its default. */
export function unsyncedBounds(given: Partial<UnsyncedBounds>): UnsyncedBounds {
  return {
    unsyncedBytesMax: given.unsyncedBytesMax ?? 256 * 1024 * 1024,
    unsyncedRecordCountMax: given.unsyncedRecordCountMax ?? 1_000_000,
    namespaceRecordCountMax: given.namespaceRecordCountMax ?? 4096,
    trackedFileCountMax: given.trackedFileCountMax ?? 100_000,
  };
}

export class UnsyncedState {
  /** Live tracked files by normalized path. */
  readonly filesByPath = new Map<string, TrackedFile>();
  /** Every tracked file: live ones and restorable orphans. */
  readonly trackedFiles = new Set<TrackedFile>();
  namespaceRecords: NamespaceRecord[] = [];
  private unsyncedBytes = 0;
  private unsyncedRecordCount = 0;

  constructor(
    /** The wrapped storage: before-images are read through it. */
    readonly inner: Storage,
    private readonly bounds: UnsyncedBounds,
  ) {}

  /** Unsynced records of one kind, over every restorable file, oldest first: the choice indexes. */
  pending(kind: 'write'): WriteRecord[];
  pending(kind: 'truncate'): TruncateRecord[];
  pending(kind: 'write' | 'truncate'): DataRecord[] {
    const out: DataRecord[] = [];
    for (const file of this.trackedFiles) {
      if (file.state === 'dead') continue;
      for (const record of file.pending) if (record.kind === kind) out.push(record);
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** The unsynced writes, indexed as `keepWrite` and `keepSector` see them. */
  writeInfos(sectorSize: number): UnsyncedWriteInfo[] {
    return this.pending('write').map((record, index) => ({
      index,
      path: record.path,
      position: record.position,
      length: record.data.length,
      sectorCount: sectorCountOf(record.position, record.data.length, sectorSize),
      carried: record.carried,
    }));
  }

  /** The non-durable namespace changes, indexed as `keepNamespace` sees them. */
  namespaceInfos(): UnsyncedNamespaceInfo[] {
    return this.namespaceRecords.map((record, index) =>
      record.kind === 'rename'
        ? { index, kind: record.kind, path: record.from, to: record.to, carried: record.carried }
        : { index, kind: record.kind, path: record.path, carried: record.carried },
    );
  }

  // ----- data: writes, truncates, syncs ------------------------------------

  /** Makes an unsynced write through `perform`, with its before-image; a dead file's write is not tracked. */
  recordWrite(
    file: TrackedFile,
    handle: FileHandle,
    seq: number,
    position: number,
    data: Uint8Array,
    perform: () => void,
  ) {
    if (file.state === 'dead') {
      perform();
      return;
    }
    const lengthBefore = handle.size();
    const beforeLength = Math.max(0, Math.min(position + data.length, lengthBefore) - position);
    const before = beforeLength > 0 ? handle.read(position, beforeLength).slice() : new Uint8Array(0);
    const record: WriteRecord = {
      kind: 'write',
      seq,
      carried: false,
      path: handle.path,
      position,
      data: data.slice(),
      before,
      lengthBefore,
    };
    this.track(file, record, perform);
    if (file.state === 'orphan' && file.content !== null) file.content = patched(file.content, position, data);
  }

  /** Makes an unsynced truncate through `perform`, keeping the bytes a shrink cuts off. */
  recordTruncate(file: TrackedFile, handle: FileHandle, seq: number, length: number, perform: () => void): void {
    if (file.state === 'dead') {
      perform();
      return;
    }
    const lengthBefore = handle.size();
    const cut = length < lengthBefore ? handle.read(length, lengthBefore - length).slice() : new Uint8Array(0);
    const record: TruncateRecord = {
      kind: 'truncate',
      seq,
      carried: false,
      path: handle.path,
      length,
      lengthBefore,
      cut,
    };
    this.track(file, record, perform);
    if (file.state === 'orphan' && file.content !== null) file.content = resized(file.content, length);
  }

  /** A sync returned: every earlier write and truncate of the file is durable. */
  markSynced(file: TrackedFile): void {
    for (const record of file.pending) this.release(record);
    file.pending = [];
  }

  /** Reserves room for `record`, performs its call, and files it; a failed call is not recorded. */
  private track(file: TrackedFile, record: DataRecord, perform: () => void): void {
    this.reserve(record);
    try {
      perform();
    } catch (error) {
      this.release(record);
      throw error;
    }
    file.pending.push(record);
  }

  /** Files a carried record (a hand-over), within this state's bounds. */
  adoptRecord(file: TrackedFile, record: DataRecord): void {
    this.reserve(record);
    file.pending.push(record);
  }

  // ----- files -------------------------------------------------------------

  /** The live tracked file at `key`, made if needed; `fresh` replaces any stale one (a create). */
  adoptFile(key: string, fresh: boolean): TrackedFile {
    const existing = this.filesByPath.get(key);
    if (existing !== undefined && !fresh) return existing;
    // A create succeeded where we tracked a file: that one went away behind our back.
    if (existing !== undefined) this.forget(existing);
    const file = new TrackedFile(key);
    this.addFile(file);
    return file;
  }

  /** Tracks `file` as it is (live or orphan), counting the content it holds. */
  addFile(file: TrackedFile): void {
    this.ensureTrackingRoom();
    this.trackedFiles.add(file);
    if (file.state === 'live') this.filesByPath.set(file.path, file);
    if (file.content !== null) this.holdBytes(file.content.length);
  }

  /** The file left its name (unlinked or replaced); `content` is what brings it back. */
  orphan(file: TrackedFile, content: Uint8Array): void {
    this.filesByPath.delete(file.path);
    file.state = 'orphan';
    file.content = content;
    this.holdBytes(content.length);
  }

  /** The file is back at `path` (a dropped unlink or replacing rename). */
  revive(file: TrackedFile, path: string): void {
    if (file.content !== null) this.unsyncedBytes -= file.content.length;
    file.state = 'live';
    file.path = path;
    file.content = null;
    this.filesByPath.set(path, file);
  }

  /** The file is gone for good: its records and content are dropped. */
  forget(file: TrackedFile): void {
    for (const record of file.pending) this.release(record);
    file.pending = [];
    if (file.content !== null) this.unsyncedBytes -= file.content.length;
    file.content = null;
    if (file.state === 'live' && this.filesByPath.get(file.path) === file) this.filesByPath.delete(file.path);
    file.state = 'dead';
    this.trackedFiles.delete(file);
  }

  /** Forgets everything (a storage that handed over or crashed holds nothing). */
  clear(): void {
    for (const file of [...this.trackedFiles]) this.forget(file);
    this.namespaceRecords = [];
  }

  /** Follows a rename: the tracked files at `fromKey` or under it move to `toKey`. */
  moveTracked(fromKey: string, toKey: string): void {
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
  captureIfFile(path: string): Uint8Array | 'directory' | null {
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
      if (this.unsyncedBytes + size > this.bounds.unsyncedBytesMax) this.budgetError(size);
      return size > 0 ? handle.read(0, size).slice() : new Uint8Array(0);
    } finally {
      handle.close();
    }
  }

  /** Keeps the tracked-file set within its bound by forgetting files nothing refers to. */
  private ensureTrackingRoom(): void {
    const countMax = this.bounds.trackedFileCountMax;
    if (this.trackedFiles.size < countMax) return;
    const referenced = new Set<TrackedFile>();
    for (const record of this.namespaceRecords) {
      if (record.kind === 'create' || record.kind === 'unlink') referenced.add(record.file);
      else if (record.kind === 'rename' && record.replaced?.kind === 'file') referenced.add(record.replaced.file);
    }
    for (const file of [...this.trackedFiles]) {
      if (file.state === 'live' && file.pending.length === 0 && file.handleCount === 0 && !referenced.has(file))
        this.forget(file);
    }
    if (this.trackedFiles.size >= countMax) {
      throw new Error(`CrashStorage: more than trackedFileCountMax = ${countMax} files tracked at once`);
    }
  }

  // ----- namespace -----------------------------------------------------------

  addNamespaceRecord(record: NamespaceRecord): void {
    const countMax = this.bounds.namespaceRecordCountMax;
    if (this.namespaceRecords.length >= countMax) {
      throw new Error(
        `CrashStorage: more than namespaceRecordCountMax = ${countMax} creates, renames and unlinks without a syncDir`,
      );
    }
    this.namespaceRecords.push(record);
  }

  /** Records a create made at call `seq`; returns the new file. */
  recordCreate(seq: number, key: string): TrackedFile {
    const file = this.adoptFile(key, true);
    const unsyncedDirs = new Set([parentDir(key)]);
    this.addNamespaceRecord({ kind: 'create', seq, path: key, file, unsyncedDirs, carried: false });
    return file;
  }

  /** Records an unlink of the file that held `content` (captured before it). */
  recordUnlink(seq: number, key: string, content: Uint8Array): void {
    const file = this.adoptFile(key, false);
    this.orphan(file, content);
    const unsyncedDirs = new Set([parentDir(key)]);
    this.addNamespaceRecord({ kind: 'unlink', seq, path: key, file, unsyncedDirs, carried: false });
  }

  /** Records a mkdir or rmdir: durable once its parent is synced. */
  recordDirectoryChange(kind: 'mkdir' | 'rmdir', seq: number, key: string): void {
    const unsyncedDirs = new Set([parentDir(key)]);
    this.addNamespaceRecord({ kind, seq, path: key, unsyncedDirs, carried: false });
  }

  /** Records a rename made at call `seq`, with the file or directory it replaced (captured before it). */
  recordRename(seq: number, fromKey: string, toKey: string, replacedContent: Uint8Array | 'directory' | null): void {
    let replaced: ReplacedTarget = null;
    if (replacedContent === 'directory') {
      replaced = { kind: 'directory' };
    } else if (replacedContent !== null) {
      const file = this.adoptFile(toKey, false);
      this.orphan(file, replacedContent);
      replaced = { kind: 'file', file };
    }
    this.moveTracked(fromKey, toKey);
    const unsyncedDirs = new Set([parentDir(fromKey), parentDir(toKey)]);
    this.addNamespaceRecord({ kind: 'rename', seq, from: fromKey, to: toKey, replaced, unsyncedDirs, carried: false });
  }

  /** A syncDir of `dir` returned: the changes in it are durable once all their directories are. */
  dirSynced(dir: string): void {
    for (const record of this.namespaceRecords) record.unsyncedDirs.delete(dir);
    this.pruneDurableNamespace();
  }

  /**
   * Drops the records that are now durable: every directory they touched was
   * synced after them. Durability never flows back to an earlier record (a synced
   * file inside an unsynced new directory can still vanish with it). A durable
   * rmdir makes the earlier records inside the removed directory moot: they are
   * dropped with it.
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

  // ----- the budget ----------------------------------------------------------

  private reserve(record: DataRecord): void {
    const countMax = this.bounds.unsyncedRecordCountMax;
    if (this.unsyncedRecordCount + 1 > countMax) {
      throw new Error(`CrashStorage: more than unsyncedRecordCountMax = ${countMax} unsynced writes and truncates`);
    }
    const bytes = recordBytes(record);
    if (this.unsyncedBytes + bytes > this.bounds.unsyncedBytesMax) this.budgetError(bytes);
    this.unsyncedRecordCount++;
    this.unsyncedBytes += bytes;
  }

  private release(record: DataRecord): void {
    this.unsyncedRecordCount--;
    this.unsyncedBytes -= recordBytes(record);
  }

  private holdBytes(byteCount: number): void {
    this.unsyncedBytes += byteCount;
    if (this.unsyncedBytes > this.bounds.unsyncedBytesMax) this.budgetError(0);
  }

  private budgetError(moreBytes: number): never {
    throw new Error(
      `CrashStorage: unsynced data would exceed unsyncedBytesMax = ${this.bounds.unsyncedBytesMax} bytes (held ${this.unsyncedBytes}, adding ${moreBytes})`,
    );
  }
}
