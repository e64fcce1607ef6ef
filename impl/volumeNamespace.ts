// The names create makes and may refuse (docs/format.md, "Names: what create makes
// and what it refuses"): every directory and file it creates becomes durable by a
// sync of its parent directory, up to the first directory that already existed;
// it refuses (E_EXISTS) a place that holds anything not its own, before creating
// anything; and a failed create removes exactly what it created, nothing else.

import { dirname, relative, resolve, sep } from 'node:path';
import { CowmapError, isStorageError } from './errors.ts';
import { fileNames, volumePath } from './layout.ts';
import type { Storage } from './storage.ts';

/** The names a volume directory holds (the lock included): a secondary must not be made under one of them. */
const volumeDirNames: readonly string[] = [
  fileNames.metadata,
  fileNames.metadataTemporary,
  fileNames.primary,
  fileNames.maps[0],
  fileNames.maps[1],
  fileNames.cow,
  fileNames.lock,
  fileNames.remoteDigests,
];

/** The names a create cut short by a crash can leave in DIR (its default secondary included). */
const leftoverNames: readonly string[] = [...volumeDirNames, fileNames.defaultSecondary];

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown }).code;
}

/** The entries of `dir`, or null when it does not exist; E_EXISTS when it is not a directory. */
function entriesOf(storage: Storage, dir: string): string[] | null {
  if (!storage.exists(dir)) return null;
  try {
    return storage.list(dir);
  } catch (error) {
    if (errorCode(error) === 'ENOTDIR')
      throw new CowmapError('E_EXISTS', `create: ${dir} exists and is not a directory`);
    throw error;
  }
}

/** The missing directories of `dir`'s path, top down; E_EXISTS when the first one that exists is not a directory. */
export function missingDirs(storage: Storage, dir: string): string[] {
  const missing: string[] = [];
  let path = dir;
  while (!storage.exists(path)) {
    missing.unshift(path);
    const parent = dirname(path);
    if (parent === path) break;
    path = parent;
  }
  if (storage.exists(path)) entriesOf(storage, path);
  return missing;
}

function namesList(dir: string, names: readonly string[]): string {
  const shown = names.slice(0, 3).map((name) => volumePath(dir, name));
  return names.length > shown.length ? `${shown.join(', ')} and ${names.length - shown.length} more` : shown.join(', ');
}

/**
 * E_EXISTS unless `dir` is missing or empty (a lock file alone does not count: it
 * holds nothing, and a create or open may have left it). Never removes anything:
 * the leftovers of a create cut short are named, for the user to remove.
 */
export function refuseOccupiedVolumeDir(storage: Storage, dir: string): void {
  const entries = entriesOf(storage, dir);
  if (entries === null) {
    missingDirs(storage, dir);
    return;
  }
  const names = entries.filter((name) => name !== fileNames.lock);
  if (names.length === 0) return;
  if (names.includes(fileNames.metadata))
    throw new CowmapError('E_EXISTS', `create: a volume exists in ${dir} (${volumePath(dir, fileNames.metadata)})`);
  if (names.every((name) => leftoverNames.includes(name))) {
    throw new CowmapError(
      'E_EXISTS',
      `create: ${dir} holds ${namesList(dir, names)} but no ${fileNames.metadata}, so no volume: an init ` +
        `that was cut short, or files of the same names that are not a volume's; create touches neither: ` +
        `remove them to create the volume here`,
    );
  }
  throw new CowmapError(
    'E_EXISTS',
    `create: ${dir} is not empty: it holds ${namesList(dir, names)}; a volume is created only in a missing or empty directory`,
  );
}

/**
 * E_BAD_REQUEST when the secondary's place collides with the volume's own names;
 * E_EXISTS when it holds anything, or when it is, or is inside, another volume's
 * directory or secondary (an ancestor holds `meta` or `replica`).
 */
export function refuseSecondaryPlace(storage: Storage, dir: string, secondaryDir: string): void {
  const volume = resolve(dir);
  const secondary = resolve(secondaryDir);
  const fromVolume = relative(volume, secondary);
  const fromSecondary = relative(secondary, volume);
  if (!fromSecondary.startsWith('..') && fromSecondary !== '') {
    throw new CowmapError(
      'E_BAD_REQUEST',
      `create: the volume directory ${dir} must not be inside its secondary ${secondaryDir}`,
    );
  }
  if (!fromVolume.startsWith('..') && volumeDirNames.includes(fromVolume.split(sep)[0]!)) {
    throw new CowmapError(
      'E_BAD_REQUEST',
      `create: the secondary ${secondaryDir} would take the name of a volume file in ${dir}`,
    );
  }
  for (let ancestor = dirname(secondary); ; ancestor = dirname(ancestor)) {
    if (ancestor !== volume) {
      for (const name of [fileNames.metadata, fileNames.replicaHeader]) {
        const path = volumePath(ancestor, name);
        if (storage.exists(path)) {
          throw new CowmapError(
            'E_EXISTS',
            `create: the secondary ${secondaryDir} would be inside another volume's directory ${ancestor} (it holds ${path})`,
          );
        }
      }
    }
    if (dirname(ancestor) === ancestor) break;
  }
  const entries = entriesOf(storage, secondaryDir);
  if (entries === null) {
    missingDirs(storage, secondaryDir);
    return;
  }
  if (entries.includes(fileNames.replicaHeader)) {
    throw new CowmapError(
      'E_EXISTS',
      `create: ${secondaryDir} holds the secondary of another volume (${volumePath(secondaryDir, fileNames.replicaHeader)})`,
    );
  }
  if (entries.includes(fileNames.metadata)) {
    throw new CowmapError(
      'E_EXISTS',
      `create: ${secondaryDir} is another volume's directory (${volumePath(secondaryDir, fileNames.metadata)})`,
    );
  }
  if (entries.length > 0) {
    throw new CowmapError(
      'E_EXISTS',
      `create: the secondary ${secondaryDir} is not empty: it holds ${namesList(secondaryDir, entries)}`,
    );
  }
}

/**
 * What one create made, in order, so that a failure removes exactly that: files
 * first (then their directories are synced), then directories deepest first, each
 * parent synced after its rmdir.
 */
export class CreatedNames {
  private readonly files: string[] = [];
  private readonly dirs: string[] = [];

  constructor(private readonly storage: Storage) {}

  /** mkdir of each missing directory of `dir`'s path, top down, each parent synced so that the new entry is durable. */
  makeDirs(dir: string): void {
    const missing = missingDirs(this.storage, dir);
    // The directories of the path that exist may have names nobody made durable (a
    // create killed after its mkdir and before the sync of its parent, a user's
    // mkdir): sync each one's parent, top down, before building on them.
    const existing: string[] = [];
    for (let path = missing.length > 0 ? dirname(missing[0]!) : dir; dirname(path) !== path; path = dirname(path))
      existing.unshift(path);
    for (const path of existing) this.storage.syncDir(dirname(path));
    for (const path of missing) {
      try {
        this.storage.mkdir(path);
      } catch (error) {
        // Made by someone else since create looked (another create, most likely): not ours to use.
        if (errorCode(error) === 'EEXIST')
          throw new CowmapError('E_EXISTS', `create: ${path} appeared while create was making it`);
        throw error;
      }
      this.dirs.push(path);
      this.storage.syncDir(dirname(path));
    }
  }

  addFile(path: string): void {
    this.files.push(path);
  }

  /**
   * Removes what was made, best effort: every step is tried; the first storage
   * error is returned (the caller reports it with the error that made create fail).
   */
  undo(): unknown {
    let firstError: unknown = null;
    const attempt = (step: () => void): void => {
      try {
        step();
      } catch (error) {
        if (!isStorageError(error)) throw error;
        firstError ??= error;
      }
    };
    const removedDirs = new Set(this.dirs);
    const dirsToSync = new Set<string>();
    for (const path of [...this.files].reverse()) {
      attempt(() => {
        if (this.storage.exists(path)) this.storage.unlink(path);
      });
      if (!removedDirs.has(dirname(path))) dirsToSync.add(dirname(path));
    }
    for (const dir of dirsToSync) attempt(() => this.storage.syncDir(dir));
    for (const dir of [...this.dirs].reverse()) {
      attempt(() => {
        this.storage.rmdir(dir);
        this.storage.syncDir(dirname(dir));
      });
    }
    this.files.length = 0;
    this.dirs.length = 0;
    return firstError;
  }
}
