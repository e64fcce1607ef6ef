// The Storage of impl/storage.ts on node:fs, the one file of impl/ that touches
// the file system. Every call is one synchronous system call, so that the order
// the volume documents is the order the kernel sees.

import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { assert } from './assert.ts';
import type { FileHandle, Lock, Storage } from './storage.ts';

/** Partial writes are retried; a write that makes no progress this many times in a row is a bug. */
const stallCountMax = 16;
/** Attempts to take a lock: one, plus one per stale lock file taken over (racing takers). */
const lockAttemptsMax = 4;
export const lockFileName = 'lock';

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
      const count = readSync(this.descriptor, buffer, done, length - done, position + done);
      if (count === 0) break;
      done += count;
    }
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  write(position: number, data: Uint8Array): void {
    let done = 0;
    let stallCount = 0;
    while (done < data.length) {
      const count = writeSync(this.descriptor, data, done, data.length - done, position + done);
      stallCount = count === 0 ? stallCount + 1 : 0;
      assert(stallCount <= stallCountMax, `write of ${this.path} makes no progress`);
      done += count;
    }
  }

  sync(): void {
    fdatasyncSync(this.descriptor);
  }

  truncate(length: number): void {
    ftruncateSync(this.descriptor, length);
  }

  size(): number {
    return fstatSync(this.descriptor).size;
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    closeSync(fd);
  }
}

/** The locks this process holds, by resolved directory: a second open in the same process is refused too. */
const heldLockDirs = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else; it is alive.
    return (error as { code?: unknown }).code === 'EPERM';
  }
}

function readLockPid(path: string): number | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return null;
    throw error;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

export class NodeStorage implements Storage {
  open(path: string, options: { create: boolean }): FileHandle {
    // 'wx+' is O_CREAT | O_EXCL | O_RDWR: the file must not exist.
    return new NodeFileHandle(path, openSync(path, options.create ? 'wx+' : 'r+'));
  }

  exists(path: string): boolean {
    return existsSync(path);
  }

  mkdir(path: string): void {
    mkdirSync(path, { recursive: true });
  }

  syncDir(path: string): void {
    const fd = openSync(path, 'r');
    try {
      fsyncSync(fd);
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
   * DIR/lock holds the holder's pid. It appears atomically with its content: the pid
   * goes to a private temporary file that is then hard-linked to DIR/lock (link fails
   * with EEXIST when the lock is there), so no taker ever sees an empty lock file.
   * A lock file whose pid is dead, unreadable, or this process's own while this
   * process does not hold the lock (a handle dropped without release) is stale and
   * is taken over. Not durable I/O: a lock means nothing after a power loss.
   * Known limits: a dead holder's pid reused by an unrelated live process blocks
   * until DIR/lock is removed by hand; two processes taking over the same stale lock
   * at the same instant can race.
   */
  lock(dir: string): Lock | null {
    const key = resolve(dir);
    if (heldLockDirs.has(key)) return null;
    const lockPath = join(dir, lockFileName);
    const temporaryPath = join(dir, `${lockFileName}.${process.pid}.tmp`);
    writeFileExclusive(temporaryPath, `${process.pid}\n`);
    try {
      for (let attempt = 0; attempt < lockAttemptsMax; attempt++) {
        try {
          linkSync(temporaryPath, lockPath);
          heldLockDirs.add(key);
          return new NodeLock(key, lockPath);
        } catch (error) {
          if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
        }
        const pid = readLockPid(lockPath);
        if (pid !== null && pid !== process.pid && isAlive(pid)) return null;
        try {
          unlinkSync(lockPath);
        } catch (error) {
          if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
        }
      }
      return null;
    } finally {
      unlinkSync(temporaryPath);
    }
  }
}

class NodeLock implements Lock {
  private released = false;

  constructor(
    private readonly key: string,
    private readonly lockPath: string,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    heldLockDirs.delete(this.key);
    // Remove the file only while it is still ours (nobody took it over meanwhile).
    if (readLockPid(this.lockPath) === process.pid) unlinkSync(this.lockPath);
  }
}

function writeFileExclusive(path: string, text: string): void {
  try {
    unlinkSync(path); // A leftover of this pid's earlier life.
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
  }
  const fd = openSync(path, 'wx');
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
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
