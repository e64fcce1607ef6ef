// The calls a Storage (impl/storage.ts) receives, as the storage doubles of this
// folder see them: one record per call, named by its kind. The durable kinds are
// the durable I/O calls of impl/storage.ts, counted one each by the adapter's `io`
// field, the crash layer (harness/crash/crashStorage.ts) and the doubles here.

/** The durable I/O calls: create is an open with `create: true`. */
export type DurableIoKind =
  | 'create'
  | 'write'
  | 'sync'
  | 'truncate'
  | 'rename'
  | 'unlink'
  | 'mkdir'
  | 'rmdir'
  | 'syncDir';

/** Every call a wrapper sees: the durable ones, an open without create, and a read. */
export type StorageCallKind = DurableIoKind | 'open' | 'read';

export interface StorageCall {
  kind: StorageCallKind;
  /** The path as given (a handle's call: the path its open was given; rename: the source). */
  path: string;
  /** rename: the destination. */
  to?: string;
  /** write and read: the file offset. */
  position?: number;
  /** write and read: the byte count; truncate: the new length. */
  length?: number;
  /** open: whether the open was read-only. */
  readOnly?: boolean;
}

export function isDurableCall(call: StorageCall): boolean {
  return call.kind !== 'open' && call.kind !== 'read';
}
