// What the crash layer (harness/crash/crashStorage.ts) holds about unsynced state:
// the records of unsynced writes and truncates (with their before-images), the
// files they belong to (followed across renames like inodes), the non-durable
// namespace changes, and the small helpers that decide and undo them.

import type { FileHandle } from '../../impl/storage.ts';
import { pathsRelated } from './crashPaths.ts';

export interface WriteRecord {
  kind: 'write';
  /** The durable call's number; carried records get negative ones, so they sort before this storage's own. */
  seq: number;
  /** Handed over by a crashed process (handOverTo). */
  carried: boolean;
  path: string;
  position: number;
  data: Uint8Array;
  /** The bytes of [position, min(position + length, lengthBefore)) before the write. */
  before: Uint8Array;
  lengthBefore: number;
}

export interface TruncateRecord {
  kind: 'truncate';
  seq: number;
  carried: boolean;
  path: string;
  length: number;
  lengthBefore: number;
  /** The bytes of [length, lengthBefore) that a shrinking truncate cut off. */
  cut: Uint8Array;
}

export type DataRecord = WriteRecord | TruncateRecord;

/** A file's identity, followed across renames (like an inode). */
export class TrackedFile {
  /** live: reachable at `path`; orphan: unlinked or replaced, restorable from `content`; dead: gone for good. */
  state: 'live' | 'orphan' | 'dead' = 'live';
  /** Normalized current path while live. */
  path: string;
  /** While orphan: the whole current content, kept up to date by writes through open handles. */
  content: Uint8Array | null = null;
  pending: DataRecord[] = [];
  handleCount = 0;
  constructor(path: string) {
    this.path = path;
  }
}

export type ReplacedTarget = { kind: 'file'; file: TrackedFile } | { kind: 'directory' } | null;

/** `carried`: made by a crashed process and handed over (handOverTo). */
export type NamespaceRecord =
  | { kind: 'create'; seq: number; path: string; file: TrackedFile; unsyncedDirs: Set<string>; carried: boolean }
  | { kind: 'unlink'; seq: number; path: string; file: TrackedFile; unsyncedDirs: Set<string>; carried: boolean }
  | { kind: 'mkdir' | 'rmdir'; seq: number; path: string; unsyncedDirs: Set<string>; carried: boolean }
  | {
      kind: 'rename';
      seq: number;
      from: string;
      to: string;
      replaced: ReplacedTarget;
      unsyncedDirs: Set<string>;
      carried: boolean;
    };

export type NamespaceKind = NamespaceRecord['kind'];

export function recordNames(record: NamespaceRecord): string[] {
  return record.kind === 'rename' ? [record.from, record.to] : [record.path];
}

export function recordsDepend(a: NamespaceRecord, b: NamespaceRecord): boolean {
  for (const x of recordNames(a)) for (const y of recordNames(b)) if (pathsRelated(x, y)) return true;
  return false;
}

export function recordBytes(record: DataRecord): number {
  return record.kind === 'write' ? record.data.length + record.before.length : record.cut.length;
}

export function carriedMark(record: DataRecord): { carried?: true } {
  return record.carried ? { carried: true } : {};
}

/** What a torn power crash decided for one write: per sector, and the byte masks of sectors torn inside. */
export interface SectorChoice {
  sectorsKept: boolean[];
  byteMasks: Array<((byte: number) => boolean) | null>;
}

/** How many bytes of its `sector`-th covered sector a write covers. */
export function coveredBytesOf(position: number, length: number, sector: number, sectorSize: number): number {
  const firstSector = Math.floor(position / sectorSize);
  const start = Math.max(position, (firstSector + sector) * sectorSize);
  const stop = Math.min(position + length, (firstSector + sector + 1) * sectorSize);
  return stop - start;
}

export function sectorCountOf(position: number, length: number, sectorSize: number): number {
  if (length === 0) return 0;
  return Math.floor((position + length - 1) / sectorSize) - Math.floor(position / sectorSize) + 1;
}

/** Writes `data` into `buffer` at `position`, growing it (with zeros) as needed. */
export function patched(buffer: Uint8Array, position: number, data: Uint8Array): Uint8Array {
  const end = position + data.length;
  let out = buffer;
  if (end > buffer.length) {
    out = new Uint8Array(end);
    out.set(buffer);
  }
  out.set(data, position);
  return out;
}

export function resized(buffer: Uint8Array, length: number): Uint8Array {
  if (length <= buffer.length) return buffer.slice(0, length);
  const out = new Uint8Array(length);
  out.set(buffer);
  return out;
}

/** Puts a file back as it was before one unsynced record, given it is as the record left it. */
export function undoData(handle: FileHandle, record: DataRecord): void {
  if (record.kind === 'write') {
    if (record.before.length > 0) handle.write(record.position, record.before);
    if (record.position + record.data.length > record.lengthBefore) handle.truncate(record.lengthBefore);
    return;
  }
  handle.truncate(record.lengthBefore);
  if (record.cut.length > 0) handle.write(record.length, record.cut);
}

/** An unsynced write as CrashStorage.unsyncedWrites tells it, indexed as `keepWrite` and `keepSector` see it. */
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

/** A non-durable namespace change as CrashStorage.unsyncedNamespace tells it, indexed as `keepNamespace` sees it. */
export interface UnsyncedNamespaceInfo {
  index: number;
  kind: NamespaceKind;
  path: string;
  /** rename: the destination. */
  to?: string;
  carried: boolean;
}
