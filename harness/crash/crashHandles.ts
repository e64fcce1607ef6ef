// The file handles and locks the crash layer (harness/crash/crashStorage.ts) hands
// out: each call goes through the layer, which counts it, crashes or fails it when
// armed to, and records what a power crash may undo.

import type { FileHandle, Lock } from '../../impl/storage.ts';
import type { CrashStorage } from './crashStorage.ts';
import { loggedCall } from './ioLog.ts';
import type { TrackedFile } from './unsyncedRecords.ts';

export class CrashFileHandle implements FileHandle {
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
    const perform = () => loggedCall(entry, () => this.innerHandle.write(position, data));
    this.storage.unsynced.recordWrite(this.file, this.innerHandle, entry.seq, position, data, perform);
  }

  sync(): void {
    const entry = this.storage.beginDurable('sync', this.path, {});
    loggedCall(entry, () => this.innerHandle.sync());
    this.storage.unsynced.markSynced(this.file);
  }

  truncate(length: number): void {
    const entry = this.storage.beginDurable('truncate', this.path, { length });
    const perform = () => loggedCall(entry, () => this.innerHandle.truncate(length));
    this.storage.unsynced.recordTruncate(this.file, this.innerHandle, entry.seq, length, perform);
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
    this.storage.held.closed(this, this.file);
    this.innerHandle.close();
  }
}

export class CrashLock implements Lock {
  constructor(
    private readonly storage: CrashStorage,
    readonly innerLock: Lock,
  ) {}

  release(): void {
    this.storage.checkAlive();
    this.storage.held.locks.delete(this);
    this.innerLock.release();
  }
}

/** The handles and locks of the living process: a crash closes and releases them all. */
export class HeldByProcess {
  readonly handles = new Set<CrashFileHandle>();
  readonly locks = new Set<CrashLock>();

  handle(storage: CrashStorage, path: string, innerHandle: FileHandle, file: TrackedFile): CrashFileHandle {
    const handle = new CrashFileHandle(storage, path, innerHandle, file);
    this.handles.add(handle);
    file.handleCount++;
    return handle;
  }

  closed(handle: CrashFileHandle, file: TrackedFile): void {
    if (this.handles.delete(handle)) file.handleCount--;
  }

  lock(storage: CrashStorage, innerLock: Lock): CrashLock {
    const lock = new CrashLock(storage, innerLock);
    this.locks.add(lock);
    return lock;
  }

  /** The process is gone. Errors closing or releasing are ignored: what they belonged to is gone too. */
  dropAll(): void {
    for (const handle of this.handles) {
      try {
        handle.innerHandle.close();
      } catch {
        /* already closed */
      }
    }
    this.handles.clear();
    for (const lock of this.locks) {
      try {
        lock.innerLock.release();
      } catch {
        /* already released */
      }
    }
    this.locks.clear();
  }
}
