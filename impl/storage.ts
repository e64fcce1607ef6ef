// The storage the reference volume runs on: a set of files, as docs/protocol.md section 5
// describes the device. The volume sees files only through this interface, so that
// the harness can wrap it (harness/crash/crashStorage.ts) to count durable I/O calls,
// crash after the k-th one, lose or tear unsynced writes, and inject ENOSPC or EIO.
//
// The interface is synchronous on purpose: every call is one system call, made in
// the order the volume documents, with no interleaving to reason about. That keeps
// crash points deterministic (call k is the same call on every run).
//
// Durable I/O calls, counted by the adapter's `io` field and by failpoints:
// create (open with create), write, sync, truncate, rename, unlink, mkdir, rmdir, syncDir.
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

export interface OpenFileOptions {
  /** O_CREAT | O_EXCL: the file must not exist. */
  create: boolean;
  /** O_RDONLY: write, truncate and sync are not allowed (a read-only open of the volume). */
  readOnly?: boolean;
}

export interface LockOptions {
  /** A shared lock, for a read-only open: other shared holders may coexist, no exclusive one. */
  shared?: boolean;
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
  open(path: string, options: OpenFileOptions): FileHandle;
  exists(path: string): boolean;
  /**
   * Creates ONE directory (its parent must exist: ENOENT otherwise; EEXIST when the
   * name exists); its entry is durable only after `syncDir` of its parent.
   */
  mkdir(path: string): void;
  /** Removes an empty directory; durable only after `syncDir` of its parent. */
  rmdir(path: string): void;
  /** fsync of a directory: creates, renames and unlinks in it are durable when it returns. */
  syncDir(path: string): void;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  /** The names in a directory, sorted. */
  list(path: string): string[];
  /**
   * Takes the lock of the volume in `dir` (exclusive, or shared with `shared: true`
   * for a read-only open), or returns null when another holder has it in a
   * conflicting mode (in this process or another). The lock is the kernel's, held
   * by an open file description of DIR/lock: it goes away with its holder, so a
   * dead holder never blocks, and it is keyed by the file, not the path.
   * DIR/lock is created when missing (not durable I/O: a lock means nothing after
   * a power loss) and stays after release. A storage error when it cannot be
   * opened (EROFS for an exclusive lock on a read-only file system); a shared lock
   * there, with no DIR/lock to open, holds nothing and is returned as held.
   */
  lock(dir: string, options?: LockOptions): Lock | null;
}
