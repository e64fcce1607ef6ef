// The temporary volume directories of the adapter's runs, tracked so that a
// SIGINT or SIGTERM handler can remove them all synchronously (it cannot await
// the suts' close()).

import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { makeTemporaryDir, removeTree } from '../../impl/nodeStorage.ts';

/** The temporary volume roots made by any AdapterSut of this process and not removed yet. */
const temporaryRoots = new Set<string>();

/**
 * A fresh temporary directory, under `parent` (default: the system temp dir, which
 * TMPDIR sets), that removeTemporaryDirs() removes unless removeTemporaryDir() did first.
 */
export function makeTrackedTemporaryDir(prefix = 'cowmap-adapter-', parent?: string): string {
  const root = parent === undefined ? makeTemporaryDir(prefix) : mkdtempSync(join(parent, prefix));
  temporaryRoots.add(root);
  return root;
}

export function removeTemporaryDir(root: string): void {
  removeTree(root);
  temporaryRoots.delete(root);
}

/**
 * Removes every temporary volume directory an AdapterSut of this process made and
 * has not removed yet: for a SIGINT or SIGTERM handler, which cannot await the
 * suts' close(). Synchronous, and safe to call more than once.
 */
export function removeTemporaryDirs(): void {
  for (const root of [...temporaryRoots]) {
    try {
      removeTree(root);
    } catch {
      // Best effort at exit: a directory that cannot be removed stays, nothing else can be done.
    }
    temporaryRoots.delete(root);
  }
}
