// The memory storage double: files and directories in memory, the device under
// the crash layer in the crash exploration (harness/exploration/), with the
// semantics of node:fs that the volume and the crash layer rely on; copied and
// digested in microseconds, so that a prefix state is saved and restored cheaply.

import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { FileHandle, Lock, LockOptions, OpenFileOptions, Storage } from '../../impl/storage.ts';

function storageError(code: string, syscall: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, path });
}

function normalized(path: string): string {
  return posix.resolve('/', path);
}

class MemoryFile {
  constructor(public data: Uint8Array) {}
}

class MemoryHandle implements FileHandle {
  private closed = false;
  constructor(
    readonly path: string,
    private readonly file: MemoryFile,
    private readonly readOnly: boolean,
  ) {}

  private live(): MemoryFile {
    if (this.closed) throw new Error(`MemoryStorage: ${this.path} used after close`);
    return this.file;
  }

  /** An O_RDONLY descriptor refuses to change the file (EBADF, as write(2) says). */
  private writable(syscall: string): MemoryFile {
    const file = this.live();
    if (this.readOnly) throw storageError('EBADF', syscall, this.path);
    return file;
  }

  read(position: number, length: number): Uint8Array {
    const data = this.live().data;
    const out = new Uint8Array(length);
    if (position < data.length) out.set(data.subarray(position, Math.min(data.length, position + length)));
    return out;
  }

  write(position: number, data: Uint8Array): void {
    const file = this.writable('write');
    const end = position + data.length;
    if (end > file.data.length) {
      const grown = new Uint8Array(end);
      grown.set(file.data);
      file.data = grown;
    }
    file.data.set(data, position);
  }

  sync(): void {
    this.writable('fdatasync');
  }

  truncate(length: number): void {
    const file = this.writable('ftruncate');
    if (length === file.data.length) return;
    const resized = new Uint8Array(length);
    resized.set(file.data.subarray(0, Math.min(length, file.data.length)));
    file.data = resized;
  }

  size(): number {
    return this.live().data.length;
  }

  close(): void {
    this.closed = true;
  }
}

/**
 * Files and directories in memory, with the semantics of node:fs that the volume
 * and the crash layer rely on (O_EXCL create, ENOENT, EEXIST, EISDIR, rename over
 * a file, handles that follow the file across rename and unlink). Sync is a no-op:
 * durability is the crash layer's business. Directory renames are not supported.
 */
export class MemoryStorage implements Storage {
  private readonly files = new Map<string, MemoryFile>();
  private readonly dirs = new Set<string>(['/']);
  private readonly locks = new Map<string, { exclusive: boolean; count: number }>();

  open(path: string, options: OpenFileOptions): FileHandle {
    const key = normalized(path);
    if (this.dirs.has(key)) throw storageError(options.create ? 'EEXIST' : 'EISDIR', 'open', path);
    let file = this.files.get(key);
    if (options.create) {
      if (file !== undefined) throw storageError('EEXIST', 'open', path);
      if (!this.dirs.has(posix.dirname(key))) throw storageError('ENOENT', 'open', path);
      file = new MemoryFile(new Uint8Array(0));
      this.files.set(key, file);
    } else if (file === undefined) {
      throw storageError('ENOENT', 'open', path);
    }
    return new MemoryHandle(path, file, options.readOnly === true);
  }

  exists(path: string): boolean {
    const key = normalized(path);
    return this.files.has(key) || this.dirs.has(key);
  }

  /** One directory: its parent must exist (ENOENT) and be a directory (ENOTDIR). */
  mkdir(path: string): void {
    const key = normalized(path);
    if (this.files.has(key) || this.dirs.has(key)) throw storageError('EEXIST', 'mkdir', path);
    const parent = posix.dirname(key);
    if (this.files.has(parent)) throw storageError('ENOTDIR', 'mkdir', path);
    if (!this.dirs.has(parent)) throw storageError('ENOENT', 'mkdir', path);
    this.dirs.add(key);
  }

  rmdir(path: string): void {
    const key = normalized(path);
    if (this.files.has(key)) throw storageError('ENOTDIR', 'rmdir', path);
    if (!this.dirs.has(key)) throw storageError('ENOENT', 'rmdir', path);
    if (key === '/' || this.list(key).length > 0)
      throw storageError(key === '/' ? 'EBUSY' : 'ENOTEMPTY', 'rmdir', path);
    this.dirs.delete(key);
  }

  syncDir(path: string): void {
    if (!this.dirs.has(normalized(path))) throw storageError('ENOENT', 'open', path);
  }

  rename(from: string, to: string): void {
    const fromKey = normalized(from);
    const toKey = normalized(to);
    const file = this.files.get(fromKey);
    if (file === undefined) {
      if (this.dirs.has(fromKey)) throw new Error(`MemoryStorage: directory rename of ${from} is not supported`);
      throw storageError('ENOENT', 'rename', from);
    }
    if (this.dirs.has(toKey)) throw storageError('EISDIR', 'rename', to);
    if (!this.dirs.has(posix.dirname(toKey))) throw storageError('ENOENT', 'rename', to);
    if (fromKey === toKey) return;
    this.files.delete(fromKey);
    this.files.set(toKey, file);
  }

  unlink(path: string): void {
    const key = normalized(path);
    if (this.dirs.has(key)) throw storageError('EISDIR', 'unlink', path);
    if (!this.files.delete(key)) throw storageError('ENOENT', 'unlink', path);
  }

  list(path: string): string[] {
    const key = normalized(path);
    if (!this.dirs.has(key)) throw storageError('ENOENT', 'scandir', path);
    const names: string[] = [];
    for (const entry of [...this.files.keys(), ...this.dirs]) {
      if (entry !== key && posix.dirname(entry) === key) names.push(posix.basename(entry));
    }
    return names.sort();
  }

  /** Shared holders coexist; an exclusive holder excludes every other (OFD lock semantics in one process). */
  lock(dir: string, options: LockOptions = {}): Lock | null {
    const key = normalized(dir);
    const shared = options.shared === true;
    const held = this.locks.get(key);
    if (held !== undefined && (held.exclusive || !shared)) return null;
    const entry = held ?? { exclusive: !shared, count: 0 };
    entry.count++;
    this.locks.set(key, entry);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        entry.count--;
        if (entry.count === 0) this.locks.delete(key);
      },
    };
  }

  /** The paths of every file, sorted. */
  filePaths(): string[] {
    return [...this.files.keys()].sort();
  }

  /** The size of a file, or null when there is none at `path`. */
  fileSize(path: string): number | null {
    return this.files.get(normalized(path))?.data.length ?? null;
  }

  /**
   * Rot: inverts every bit of the byte at `offset` of a file, behind everything
   * (no handle, nothing counted), as a failing device would. Returns false when
   * the file is missing or shorter.
   */
  flipByte(path: string, offset: number): boolean {
    const file = this.files.get(normalized(path));
    if (file === undefined || offset < 0 || offset >= file.data.length) return false;
    file.data[offset] = file.data[offset]! ^ 0xff;
    return true;
  }

  /** A copy of every file and directory (no locks, no open handles). */
  clone(): MemoryStorage {
    const copy = new MemoryStorage();
    for (const dir of this.dirs) copy.dirs.add(dir);
    for (const [path, file] of this.files) copy.files.set(path, new MemoryFile(file.data.slice()));
    return copy;
  }

  /** SHA-256 over every path and file content, in path order. */
  digest(): string {
    const hash = createHash('sha256');
    for (const dir of [...this.dirs].sort()) hash.update(`d${dir}\0`);
    for (const path of [...this.files.keys()].sort()) {
      const data = this.files.get(path)!.data;
      hash.update(`f${path}\0${data.length}\0`);
      hash.update(data);
    }
    return hash.digest('hex');
  }
}
