// The kernel's file lock, through the npm package fs-native-extensions (holepunchto):
// node:fs has no lock call, and a lock the kernel keeps is the only kind that goes
// away with a dead holder (a pid file outlives it, and a zombie or a reused pid
// keeps it "alive"). On Linux the package takes an open file description lock
// (fcntl F_OFD_SETLK over the whole file), flock on macOS: both belong to the open
// file description, not to the process, so two opens of one file conflict even in
// one process, and both are keyed by the file (its inode), whatever path, symlink
// or bind mount reached it. Closing the descriptor, or the holder's death, drops it.

import { createRequire } from 'node:module';

interface FsNativeExtensions {
  /** Returns false when a conflicting lock is held (EAGAIN); throws on anything else. */
  tryLock(fd: number, options: { shared: boolean }): boolean;
  unlock(fd: number): void;
}

const extensions = createRequire(import.meta.url)('fs-native-extensions') as FsNativeExtensions;

/** Takes a lock on the whole file open at `fd`, shared or exclusive, or returns false when it is held in a conflicting mode. */
export function tryKernelLock(fd: number, shared: boolean): boolean {
  return extensions.tryLock(fd, { shared });
}

export function unlockKernelLock(fd: number): void {
  extensions.unlock(fd);
}
