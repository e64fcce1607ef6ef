// The crash layer's tests' bench: a minimal node:fs Storage and the helpers the
// tests share. The storage is written here, independently of impl/nodeStorage.ts and
// of the storage doubles in harness/storage/, on purpose: the crash layer is checked
// against a plain file system that shares no code with what it checks (one test also
// runs it over impl/nodeStorage.ts). Each test works in its own temporary directory.

import { after } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import type { FileHandle, Lock, OpenFileOptions, Storage } from '../../impl/storage.ts';
import { CrashStorage, type CrashStorageOptions } from './crashStorage.ts';

const heldLockDirs = new Set<string>();

class FsHandle implements FileHandle {
  constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}
  read(position: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    // Bounded: each round reads at least one byte or stops at the end of the file.
    while (done < length) {
      const got = fs.readSync(this.fd, out, done, length - done, position + done);
      if (got === 0) break;
      done += got;
    }
    return out;
  }
  write(position: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) done += fs.writeSync(this.fd, data, done, data.length - done, position + done);
  }
  sync(): void {
    fs.fdatasyncSync(this.fd);
  }
  truncate(length: number): void {
    fs.ftruncateSync(this.fd, length);
  }
  size(): number {
    return fs.fstatSync(this.fd).size;
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

export class FsStorage implements Storage {
  open(path: string, options: OpenFileOptions): FileHandle {
    return new FsHandle(path, fs.openSync(path, options.create ? 'wx+' : options.readOnly === true ? 'r' : 'r+'));
  }
  exists(path: string): boolean {
    return fs.existsSync(path);
  }
  mkdir(path: string): void {
    fs.mkdirSync(path);
  }
  rmdir(path: string): void {
    fs.rmdirSync(path);
  }
  syncDir(path: string): void {
    const fd = fs.openSync(path, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  rename(from: string, to: string): void {
    fs.renameSync(from, to);
  }
  unlink(path: string): void {
    fs.unlinkSync(path);
  }
  list(path: string): string[] {
    return fs.readdirSync(path).sort();
  }
  lock(dir: string): Lock | null {
    const key = nodePath.resolve(dir);
    if (heldLockDirs.has(key)) return null;
    heldLockDirs.add(key);
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        heldLockDirs.delete(key);
      },
    };
  }
}

const tempDirs: string[] = [];

// In memory where there is a memory file system: the layer simulates durability
// itself, so a disk's fsyncs would only cost time (most of these tests' time).
const tempRoot = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();

export function tempDir(): string {
  const dir = fs.mkdtempSync(nodePath.join(tempRoot, 'cowmap-crash-'));
  tempDirs.push(dir);
  return dir;
}

after(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A temporary directory and a crash layer over the plain node:fs storage. */
export function fresh(): { dir: string; storage: CrashStorage } {
  return { dir: tempDir(), storage: new CrashStorage(new FsStorage()) };
}

export function bytes(length: number, value: number): Uint8Array {
  return new Uint8Array(length).fill(value);
}

export function fileBytes(path: string): Uint8Array {
  return new Uint8Array(fs.readFileSync(path));
}

/** Makes `name` in `dir` with `content`, synced and dir-synced: all of it durable. */
export function durableFile(storage: CrashStorage, dir: string, name: string, content: Uint8Array): FileHandle {
  const handle = storage.open(nodePath.join(dir, name), { create: true });
  if (content.length > 0) handle.write(0, content);
  handle.sync();
  storage.syncDir(dir);
  return handle;
}

/** Kills `storage` (process mode) and hands its unsynced data to a fresh storage, which it returns. */
export function killAndRecover(storage: CrashStorage, options: CrashStorageOptions = {}): CrashStorage {
  storage.crashNow('process');
  const recovered = new CrashStorage(new FsStorage(), options);
  storage.handOverTo(recovered);
  return recovered;
}

export const none = (): boolean => false;
export const all = (): boolean => true;
