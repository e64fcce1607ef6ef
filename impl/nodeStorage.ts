// The Storage of impl/storage.ts on node:fs, the one file of impl/ that touches
// the file system. Every call is one synchronous system call, so that the order
// the volume documents is the order the kernel sees.

import {
  closeSync,
  constants,
  existsSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert } from './assert.ts';
import { fileNames } from './layout.ts';
import type { FileHandle, Lock, LockOptions, OpenFileOptions, Storage } from './storage.ts';
import { tryKernelLock, unlockKernelLock } from './volumeLock.ts';

/** Partial writes are retried; a write that makes no progress this many times in a row is a bug. */
const stallCountMax = 16;
/** DIR/lock: the file whose kernel lock is the volume's. */
export const lockFileName = fileNames.lock;

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown }).code;
}

/**
 * node:fs names the path in the errors of path calls (open, rename, ...) but not in
 * those of fd calls (write, fdatasync, ftruncate, read): "ENOSPC: no space left on
 * device, write". The volume's E_IO message must say which file, so the error of an
 * fd call is rethrown with the path appended, keeping its `code`, errno and syscall.
 */
function withPath<T>(path: string, call: () => T): T {
  try {
    return call();
  } catch (error) {
    if (!(error instanceof Error) || typeof errorCode(error) !== 'string') throw error;
    const wrapped = Object.assign(new Error(`${error.message} '${path}'`, { cause: error }), {
      code: errorCode(error),
      errno: (error as { errno?: unknown }).errno,
      syscall: (error as { syscall?: unknown }).syscall,
      path,
    });
    throw wrapped;
  }
}

class NodeFileHandle implements FileHandle {
  readonly path: string;
  private fd: number | null;

  constructor(path: string, fd: number) {
    this.path = path;
    this.fd = fd;
  }

  private get descriptor(): number {
    assert(this.fd !== null, `${this.path} used after close`);
    return this.fd;
  }

  read(position: number, length: number): Uint8Array {
    const buffer = Buffer.alloc(length);
    // Each pass reads at least one byte or stops at the end of the file (the rest
    // reads as zeros), so the loop runs at most `length` times.
    let done = 0;
    while (done < length) {
      const count = withPath(this.path, () => readSync(this.descriptor, buffer, done, length - done, position + done));
      if (count === 0) break;
      done += count;
    }
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  write(position: number, data: Uint8Array): void {
    let done = 0;
    let stallCount = 0;
    while (done < data.length) {
      const count = withPath(this.path, () =>
        writeSync(this.descriptor, data, done, data.length - done, position + done),
      );
      stallCount = count === 0 ? stallCount + 1 : 0;
      assert(stallCount <= stallCountMax, `write of ${this.path} makes no progress`);
      done += count;
    }
  }

  sync(): void {
    withPath(this.path, () => fdatasyncSync(this.descriptor));
  }

  truncate(length: number): void {
    withPath(this.path, () => ftruncateSync(this.descriptor, length));
  }

  size(): number {
    return withPath(this.path, () => fstatSync(this.descriptor).size);
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    withPath(this.path, () => closeSync(fd));
  }
}

export class NodeStorage implements Storage {
  open(path: string, options: OpenFileOptions): FileHandle {
    // 'wx+' is O_CREAT | O_EXCL | O_RDWR: the file must not exist.
    const flags = options.create ? 'wx+' : options.readOnly === true ? 'r' : 'r+';
    return new NodeFileHandle(path, openSync(path, flags));
  }

  exists(path: string): boolean {
    return existsSync(path);
  }

  mkdir(path: string): void {
    mkdirSync(path);
  }

  rmdir(path: string): void {
    rmdirSync(path);
  }

  syncDir(path: string): void {
    const fd = openSync(path, 'r');
    try {
      withPath(path, () => fsyncSync(fd));
    } finally {
      closeSync(fd);
    }
  }

  rename(from: string, to: string): void {
    renameSync(from, to);
  }

  unlink(path: string): void {
    unlinkSync(path);
  }

  list(path: string): string[] {
    return readdirSync(path).sort();
  }

  /**
   * An open file description lock (Linux F_OFD_SETLK, flock elsewhere) on DIR/lock,
   * through fs-native-extensions (node:fs has no lock call). See impl/volumeLock.ts.
   */
  lock(dir: string, options: LockOptions = {}): Lock | null {
    return takeLock(join(dir, lockFileName), options.shared === true);
  }
}

/** Attempts to take a lock whose file was replaced under us (see takeLock); racing removers are rare. */
const lockAttemptsMax = 8;

/**
 * The lock file is never truncated or written: its content means nothing, the
 * kernel's lock on its open file description is the lock. An exclusive lock opens
 * it O_RDWR | O_CREAT. A shared lock (a read-only open) opens it O_RDONLY, which is
 * all a read lock needs, and creates it only when it is missing; when it is
 * missing and cannot be created (a read-only file system or directory) the
 * read-only open proceeds without a lock: nobody can write such a volume anyway.
 * The file is only removed by its holder (a failed create removing what it made);
 * a taker that locked a file since removed or replaced sees that its descriptor
 * no longer is the file at the path, and tries again.
 */
function takeLock(path: string, shared: boolean): Lock | null {
  for (let attempt = 0; attempt < lockAttemptsMax; attempt++) {
    const fd = openLockFile(path, shared);
    if (fd === null) return unlockedReadOnly;
    let lock: NodeLock | null = null;
    let conflict = false;
    try {
      if (!tryKernelLock(fd, shared)) conflict = true;
      else if (isCurrentFile(fd, path)) lock = new NodeLock(fd);
      else unlockKernelLock(fd);
    } finally {
      // Closing the descriptor drops a lock taken on it, also when a check threw.
      if (lock === null) closeQuietly(fd);
    }
    if (conflict) return null;
    if (lock !== null) return lock;
  }
  return null;
}

function openLockFile(path: string, shared: boolean): number | null {
  const createFlags = constants.O_RDWR | constants.O_CREAT;
  if (!shared) return openSync(path, createFlags, 0o644);
  // A shared lock needs only a descriptor open for reading: a read-only open writes nothing it can avoid.
  try {
    return openSync(path, constants.O_RDONLY);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
  try {
    return openSync(path, createFlags, 0o644);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return null;
    throw error;
  }
}

function isCurrentFile(fd: number, path: string): boolean {
  const held = fstatSync(fd);
  try {
    const current = statSync(path);
    return current.dev === held.dev && current.ino === held.ino;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // The descriptor is going away either way; its lock goes with it.
  }
}

/** A shared "lock" on a read-only file system without a lock file: nothing to hold. */
const unlockedReadOnly: Lock = { release() {} };

class NodeLock implements Lock {
  private fd: number | null;

  constructor(fd: number) {
    this.fd = fd;
  }

  release(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      unlockKernelLock(fd);
    } finally {
      // Closing the last descriptor of the open file description drops the lock anyway.
      closeSync(fd);
    }
  }
}

/** Reads a whole file (for the command line's input files): not volume I/O. */
export function readWholeFile(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** A new empty directory under the system's temporary directory (for tests and tools). */
export function makeTemporaryDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Removes a directory tree made by makeTemporaryDir. */
export function removeTree(path: string): void {
  rmSync(path, { recursive: true, force: true });
}
