// The counting storage double: counts what the volume asks of the file system,
// bytes read and written and the durable I/O calls by kind (the same calls that
// the crash layer counts), and keeps nothing else, so that the benchmarks (bench/)
// can time through it.

import { HookedStorage } from './hookedStorage.ts';
import { isDurableCall, type StorageCall } from './storageCall.ts';

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

export class CountingStorage extends HookedStorage {
  private counts: IoCounts = zeroCounts();

  /** The counts since construction or the last take, and a fresh start. */
  take(): IoCounts {
    const counts = this.counts;
    this.counts = zeroCounts();
    return counts;
  }

  protected before(call: StorageCall): void {
    const counts = this.counts;
    if (isDurableCall(call)) counts.durableCalls++;
    switch (call.kind) {
      case 'read':
        counts.readCalls++;
        counts.bytesRead += call.length!;
        return;
      case 'write':
        counts.writeCalls++;
        counts.bytesWritten += call.length!;
        return;
      case 'sync':
        counts.syncCalls++;
        return;
      case 'syncDir':
        counts.syncDirCalls++;
        return;
    }
  }
}
