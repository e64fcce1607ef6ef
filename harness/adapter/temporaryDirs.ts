// The temporary volume directories of the adapter's runs, tracked so that a
// SIGINT or SIGTERM handler can remove them all synchronously (it cannot await
// the suts' close()).

import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
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

/** Removals started by removeTemporaryDirSoon() and not finished yet. */
const removals = new Set<Promise<void>>();
/** Past this many removals in flight, the next one is done at once (the queue stays bounded). */
const removalsInFlightMax = 16;

/**
 * Removes `root` in the background: between two runs through an adapter the
 * volume's files are unlinked while the adapter already works on the next run
 * (a synchronous removal held the event loop, and so the run, for its whole
 * length). Tracked until done, so removeTemporaryDirs() still covers it.
 */
export function removeTemporaryDirSoon(root: string): void {
  if (removals.size >= removalsInFlightMax) {
    removeTemporaryDir(root);
    return;
  }
  const removal: Promise<void> = rm(root, { recursive: true, force: true, maxRetries: 2 })
    .catch(() => removeTemporaryDir(root))
    .finally(() => {
      temporaryRoots.delete(root);
      removals.delete(removal);
    });
  removals.add(removal);
}

/** Resolves once every background removal has finished. */
export async function temporaryDirRemovalsSettled(): Promise<void> {
  await Promise.allSettled([...removals]);
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
