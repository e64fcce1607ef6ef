// The open files of a volume and what create, open and close share to handle them:
// the options, the rules a mutant may turn off, closing everything on the way out,
// and turning a storage error into a CowmapError. Create's files and their durable
// order are in impl/createVolume.ts, open's in impl/openVolume.ts.

import { CowmapError, isStorageError } from './errors.ts';
import type { Geometry } from './geometry.ts';
import type { CowStore } from './cowStore.ts';
import type { MapFile } from './mapFile.ts';
import type { MetadataStore } from './metadata.ts';
import type { RegionFile } from './regionFile.ts';
import type { LinkChoice } from './remote/replicaKinds.ts';
import type { Replica } from './replica.ts';
import type { FileHandle, Lock, Storage } from './storage.ts';

/**
 * The secondary of a new volume: at most one of secondaryDir, secondaryUrl and
 * consistentSecondaryDir (docs/remote.md, "The secondary kinds"); a directory
 * secondary in DIR/secondary when none is given. Recorded in the metadata.
 */
export interface CreateOptions extends LinkChoice {
  /** The secondary's directory (FileReplica). */
  secondaryDir?: string;
  /** An NBD export (nbd://HOST[:PORT][/EXPORT], nbd+unix:///EXPORT?socket=PATH) of exactly the volume's size + 4096 bytes. */
  secondaryUrl?: string;
  /** A local secondary that keeps a consistent image (ReceiverReplica), in this directory. */
  consistentSecondaryDir?: string;
}

export interface OpenOptions extends LinkChoice {
  /** Where a local secondary is now, when it moved away from the recorded place (ignored for an NBD one). */
  secondaryDir?: string;
  /**
   * Open for reading only (`cowmap status`, `read`, `scrub` without --repair):
   * files opened O_RDONLY, a shared lock, nothing written or synced; recovery
   * happens in memory only, and every call that would write is refused.
   */
  readOnly?: boolean;
}

/** The open files of a volume, as create and open hand them to the constructor. */
export interface VolumeParts {
  storage: Storage;
  dir: string;
  lock: Lock;
  metadata: MetadataStore;
  maps: [MapFile, MapFile];
  primary: RegionFile;
  cow: CowStore;
  replica: Replica;
  /** Opened with `readOnly` (see OpenOptions). */
  readOnly: boolean;
}

/**
 * The rules that keep a volume whole and its holders apart (docs/protocol.md
 * section 2), and open's sync of every file before reading it. Always on in
 * ReplicatedVolume: a subclass turns one off only to make a harness mutant.
 */
export interface VolumeRules {
  geometryProblem(geometry: Geometry): string | null;
  refusesExistingVolume: boolean;
  honoursLock: boolean;
  syncFilesAtOpen: boolean;
}

/** What a volume that does not honour the lock holds instead of one (a mutant's). */
export const unheldLock: Lock = { release() {} };

/** Releases a lock; a storage error doing so is ignored (the kernel drops the lock with the file anyway). */
export function releaseLock(lock: Lock): void {
  try {
    lock.release();
  } catch (error) {
    if (!isStorageError(error)) throw error;
  }
}

/**
 * A storage error as a CowmapError: `missingAs` for a missing file (ENOENT), E_IO
 * for any other. CowmapErrors and everything else (simulated crashes, assertion
 * failures) are returned as they are, to be rethrown untouched.
 */
export function asVolumeError(error: unknown, where: string, missingAs: 'E_IO' | 'E_CORRUPT'): unknown {
  if (!isStorageError(error)) return error;
  const code = error.code === 'ENOENT' ? missingAs : 'E_IO';
  // node:fs messages start with the errno name ("ENOSPC: no space left on device,
  // write '/v/cow'"): it is printed once.
  const message = error.message.startsWith(`${error.code}:`) ? error.message : `${error.code}: ${error.message}`;
  return new CowmapError(code, `${where}: ${message}`, { cause: error });
}

/** Closes every file of `parts` and releases its lock (create's and open's way out on an error). */
export function closeParts(parts: VolumeParts): void {
  const opened = new OpenedFiles();
  for (const file of [parts.metadata.file, parts.maps[0].file, parts.maps[1].file, parts.primary.file, parts.cow.file])
    opened.add(file);
  opened.replica = parts.replica;
  try {
    opened.closeAll();
  } finally {
    releaseLock(parts.lock);
  }
}

/** Files opened so far by create, open or close, closed together on the way out. */
export class OpenedFiles {
  private readonly files: FileHandle[] = [];
  replica: Replica | null = null;

  add(file: FileHandle): FileHandle {
    this.files.push(file);
    return file;
  }

  /**
   * Closes everything. A storage error from close is ignored: every write that
   * matters was synced before, and the handle is going away either way. Anything
   * else is rethrown once every file has been closed.
   */
  closeAll(): void {
    let rethrow: { error: unknown } | null = null;
    const closers = [
      ...this.files.map((file) => () => file.close()),
      ...(this.replica === null ? [] : [() => this.replica!.close()]),
    ];
    for (const close of closers) {
      try {
        close();
      } catch (error) {
        if (!isStorageError(error) && rethrow === null) rethrow = { error };
      }
    }
    if (rethrow !== null) throw rethrow.error;
  }
}
