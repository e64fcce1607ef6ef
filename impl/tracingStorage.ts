// A Storage wrapper for the tests of create and open (impl/createVolume.test.ts,
// impl/openVolume.test.ts): it logs every durable call with its full path, and
// fails one chosen durable call with an errno the way node:fs reports it (the
// call is not made).

import type { FileHandle, Lock, LockOptions, OpenFileOptions, Storage } from './storage.ts';

export interface TracedCall {
  kind: 'create' | 'write' | 'sync' | 'truncate' | 'rename' | 'unlink' | 'mkdir' | 'rmdir' | 'syncDir' | 'open';
  path: string;
  to?: string;
  readOnly?: boolean;
}

export class TracingStorage implements Storage {
  readonly log: TracedCall[] = [];
  private durableCount = 0;
  private fault: { when: (call: TracedCall, index: number) => boolean; code: string } | null = null;

  constructor(private readonly inner: Storage) {}

  /** The number of durable calls made so far (a failed one included). */
  get durableCalls(): number {
    return this.durableCount;
  }

  /** The first later durable call that `when` accepts fails with `code`; `when` gets the call and its index among durable calls. */
  failWhen(when: (call: TracedCall, index: number) => boolean, code = 'ENOSPC'): void {
    this.fault = { when, code };
  }

  /** Stops failing; true when the armed fault never fired. */
  disarm(): boolean {
    const unfired = this.fault !== null;
    this.fault = null;
    return unfired;
  }

  private durable(call: TracedCall): void {
    const index = this.durableCount++;
    this.log.push(call);
    const fault = this.fault;
    if (fault?.when(call, index)) {
      this.fault = null;
      throw Object.assign(new Error(`${fault.code}: injected failure, ${call.kind} '${call.path}'`), {
        code: fault.code,
        syscall: call.kind,
        path: call.path,
      });
    }
  }

  open(path: string, options: OpenFileOptions): FileHandle {
    if (options.create) this.durable({ kind: 'create', path });
    else this.log.push({ kind: 'open', path, readOnly: options.readOnly === true });
    const inner = this.inner.open(path, options);
    const durable = (call: TracedCall): void => this.durable(call);
    return {
      path,
      read: (position, length) => inner.read(position, length),
      write(position, data) {
        durable({ kind: 'write', path });
        inner.write(position, data);
      },
      sync() {
        durable({ kind: 'sync', path });
        inner.sync();
      },
      truncate(length) {
        durable({ kind: 'truncate', path });
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
    this.durable({ kind: 'mkdir', path });
    this.inner.mkdir(path);
  }

  rmdir(path: string): void {
    this.durable({ kind: 'rmdir', path });
    this.inner.rmdir(path);
  }

  syncDir(path: string): void {
    this.durable({ kind: 'syncDir', path });
    this.inner.syncDir(path);
  }

  rename(from: string, to: string): void {
    this.durable({ kind: 'rename', path: from, to });
    this.inner.rename(from, to);
  }

  unlink(path: string): void {
    this.durable({ kind: 'unlink', path });
    this.inner.unlink(path);
  }

  list(path: string): string[] {
    return this.inner.list(path);
  }

  lock(dir: string, options?: LockOptions): Lock | null {
    return this.inner.lock(dir, options);
  }
}
