// The storage the reference volume runs on: a set of files, as docs/protocol.md section 5
// describes the device. The volume sees files only through this interface, so that
// the harness can wrap it (harness/crashStorage.ts) to count durable I/O calls,
// crash after the k-th one, lose or tear unsynced writes, and inject ENOSPC or EIO.
//
// The interface is synchronous on purpose: every call is one system call, made in
// the order the volume documents, with no interleaving to reason about. That keeps
// crash points deterministic (call k is the same call on every run).
//
// Durable I/O calls, counted by the adapter's `io` field and by failpoints:
// create (open with create), write, sync, truncate, rename, unlink, mkdir, syncDir.
// Reads, stat, list and locking are not durable I/O and are not counted.

export interface FileHandle {
  /** The file's path as given to `Storage.open`. */
  readonly path: string;
  /** Reads `length` bytes at `position`; bytes past the end of the file read as zeros. */
  read(position: number, length: number): Uint8Array;
  /** pwrite: writes all of `data` at `position`. Not durable until `sync`. */
  write(position: number, data: Uint8Array): void;
  /** fdatasync: every earlier write of this file is durable when it returns. */
  sync(): void;
  /** Sets the file's length. Not durable until `sync`. */
  truncate(length: number): void;
  /** The file's current length in bytes. */
  size(): number;
  close(): void;
}

/** A held volume lock; see `Storage.lock`. */
export interface Lock {
  release(): void;
}

export interface Storage {
  /**
   * Opens a file for reading and writing. With `create: true` the file must not
   * exist (O_CREAT | O_EXCL); its directory entry is durable only after `syncDir`.
   * Throws an error with `code: 'ENOENT'` or `'EEXIST'` as node:fs does.
   */
  open(path: string, options: { create: boolean }): FileHandle;
  exists(path: string): boolean;
  /** Creates a directory and any missing parents; durable only after `syncDir` of its parent. */
  mkdir(path: string): void;
  /** fsync of a directory: creates, renames and unlinks in it are durable when it returns. */
  syncDir(path: string): void;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  /** The names in a directory, sorted. */
  list(path: string): string[];
  /**
   * Takes the exclusive lock of the volume in `dir`, or returns null when another
   * live holder has it (in this process or another). A lock left behind by a process
   * that no longer runs does not block: it is taken over.
   */
  lock(dir: string): Lock | null;
}
