// The common base of the wrapping storage doubles (recording, counting,
// fail-at-k): a Storage that passes every call to the one it wraps, after
// showing it to `before`. A double is then only what it does with a call: note
// it, count it, or throw instead of making it. Calls that are neither durable
// I/O nor reads or opens (exists, list, lock, size, close) pass unseen.

import type { FileHandle, Lock, LockOptions, OpenFileOptions, Storage } from '../../impl/storage.ts';
import type { StorageCall } from './storageCall.ts';

export abstract class HookedStorage implements Storage {
  constructor(protected readonly inner: Storage) {}

  /** Sees each call before it is passed on; throwing fails the call, which is then not made. */
  protected abstract before(call: StorageCall): void;

  open(path: string, options: OpenFileOptions): FileHandle {
    this.before(
      options.create ? { kind: 'create', path } : { kind: 'open', path, readOnly: options.readOnly === true },
    );
    const inner = this.inner.open(path, options);
    const before = (call: StorageCall): void => this.before(call);
    return {
      path,
      read(position, length) {
        before({ kind: 'read', path, position, length });
        return inner.read(position, length);
      },
      write(position, data) {
        before({ kind: 'write', path, position, length: data.length });
        inner.write(position, data);
      },
      sync() {
        before({ kind: 'sync', path });
        inner.sync();
      },
      truncate(length) {
        before({ kind: 'truncate', path, length });
        inner.truncate(length);
      },
      size: () => inner.size(),
      close: () => inner.close(),
    };
  }

  exists(path: string): boolean {
    return this.inner.exists(path);
  }

  mkdir(path: string): void {
    this.before({ kind: 'mkdir', path });
    this.inner.mkdir(path);
  }

  rmdir(path: string): void {
    this.before({ kind: 'rmdir', path });
    this.inner.rmdir(path);
  }

  syncDir(path: string): void {
    this.before({ kind: 'syncDir', path });
    this.inner.syncDir(path);
  }

  rename(from: string, to: string): void {
    this.before({ kind: 'rename', path: from, to });
    this.inner.rename(from, to);
  }

  unlink(path: string): void {
    this.before({ kind: 'unlink', path });
    this.inner.unlink(path);
  }

  list(path: string): string[] {
    return this.inner.list(path);
  }

  /** Not durable I/O: a lock means nothing after a power loss. */
  lock(dir: string, options?: LockOptions): Lock | null {
    return this.inner.lock(dir, options);
  }
}
