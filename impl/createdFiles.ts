// The clean-up of a create that failed part way (the secondary's directory, the
// receiver's): close what it opened and remove what it made, quietly, because the
// error worth reporting is the create's own.

import { parentDir } from './layout.ts';
import type { FileHandle, Storage } from './storage.ts';

export function closeQuietly(file: FileHandle): void {
  try {
    file.close();
  } catch {
    // Closing is cleanup; the error that matters is the caller's.
  }
}

/**
 * Removes what a failed create made, the last made first, each removal made durable
 * (a sync of `dir`, then of its parent when `dir` itself was made); errors ignored.
 * A path already gone is skipped.
 */
export function removeQuietly(storage: Storage, dir: string, created: readonly string[], madeDir: boolean): void {
  try {
    for (const path of [...created].reverse()) if (storage.exists(path)) storage.unlink(path);
    if (created.length > 0) storage.syncDir(dir);
    if (madeDir) {
      storage.rmdir(dir);
      storage.syncDir(parentDir(dir));
    }
  } catch {
    // A removal that fails leaves a leftover that the next create reports (E_EXISTS), naming it.
  }
}
