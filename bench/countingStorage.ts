// A Storage wrapper (impl/storage.ts) that counts what the volume asks of the file
// system: bytes read and written, and the durable I/O calls by kind (the same
// calls that harness/crashStorage.ts counts: create, write, sync, truncate,
// rename, unlink, mkdir, rmdir, syncDir). It adds one counter update per call and keeps
// nothing else, so the benchmarks can time through it.

import type { FileHandle, Lock, LockOptions, OpenFileOptions, Storage } from '../impl/storage.ts';

export interface IoCounts {
  bytesRead: number;
  bytesWritten: number;
  readCalls: number;
  writeCalls: number;
  /** fdatasync of a file (FileHandle.sync). */
  syncCalls: number;
  /** fsync of a directory. */
  syncDirCalls: number;
  /** Every durable call: create, write, sync, truncate, rename, unlink, mkdir, rmdir, syncDir. */
  durableCalls: number;
}

function zeroCounts(): IoCounts {
  return { bytesRead: 0, bytesWritten: 0, readCalls: 0, writeCalls: 0, syncCalls: 0, syncDirCalls: 0, durableCalls: 0 };
}

class CountingFileHandle implements FileHandle {
  constructor(
    private readonly inner: FileHandle,
    private readonly counts: () => IoCounts,
  ) {}

  get path(): string {
    return this.inner.path;
  }

  read(position: number, length: number): Uint8Array {
    const data = this.inner.read(position, length);
    const counts = this.counts();
    counts.readCalls++;
    counts.bytesRead += data.length;
    return data;
  }

  write(position: number, data: Uint8Array): void {
    const counts = this.counts();
    counts.writeCalls++;
    counts.durableCalls++;
    counts.bytesWritten += data.length;
    this.inner.write(position, data);
  }

  sync(): void {
    const counts = this.counts();
    counts.syncCalls++;
    counts.durableCalls++;
    this.inner.sync();
  }

  truncate(length: number): void {
    this.counts().durableCalls++;
    this.inner.truncate(length);
  }

  size(): number {
    return this.inner.size();
  }

  close(): void {
    this.inner.close();
  }
}

export class CountingStorage implements Storage {
  private counts: IoCounts = zeroCounts();

  constructor(private readonly inner: Storage) {}

  /** The counts since construction or the last take, and a fresh start. */
  take(): IoCounts {
    const counts = this.counts;
    this.counts = zeroCounts();
    return counts;
  }

  open(path: string, options: OpenFileOptions): FileHandle {
    if (options.create) this.counts.durableCalls++;
    return new CountingFileHandle(this.inner.open(path, options), () => this.counts);
  }

  exists(path: string): boolean {
    return this.inner.exists(path);
  }

  mkdir(path: string): void {
    this.counts.durableCalls++;
    this.inner.mkdir(path);
  }

  rmdir(path: string): void {
    this.counts.durableCalls++;
    this.inner.rmdir(path);
  }

  syncDir(path: string): void {
    this.counts.durableCalls++;
    this.counts.syncDirCalls++;
    this.inner.syncDir(path);
  }

  rename(from: string, to: string): void {
    this.counts.durableCalls++;
    this.inner.rename(from, to);
  }

  unlink(path: string): void {
    this.counts.durableCalls++;
    this.inner.unlink(path);
  }

  list(path: string): string[] {
    return this.inner.list(path);
  }

  /** Not durable I/O: never counted. */
  lock(dir: string, options?: LockOptions): Lock | null {
    return this.inner.lock(dir, options);
  }
}
