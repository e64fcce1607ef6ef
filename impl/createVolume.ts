// create: the files of a new, all-zero volume and its secondary, in the durable
// order docs/format.md ("create") gives. Everything that can refuse is judged
// before anything is made (impl/volumeNamespace.ts: never a file or directory that
// is not this call's own); every new name is made durable by a sync of its
// directory; the metadata is written last (see MetadataStore.create): until its
// rename is durable there is no volume. A failed create removes exactly what it
// made. The leftovers of a create cut short by a crash are never removed by the
// next create: it names them (E_EXISTS).

import { randomBytes } from 'node:crypto';
import { cowFileSize, CowStore } from './cowStore.ts';
import { CowmapError, isStorageError } from './errors.ts';
import { volumeSize, type Geometry } from './geometry.ts';
import { fileNames, recordedSecondary, sameDir, volumeFileNames, volumePath } from './layout.ts';
import { MapFile, mapFileSize } from './mapFile.ts';
import { MetadataStore, secondaryBytesMax, volumeIdSize, type MetadataRecord } from './metadata.ts';
import { RegionFile } from './regionFile.ts';
import {
  checkNbdUrl,
  refuseUrlAsDirectory,
  consistentPrefix,
  createReplica,
  localSecondaryDir,
  type SecondaryKind,
  secondaryKindOf,
} from './remote/replicaKinds.ts';
import type { Replica, ReplicaIdentity } from './replica.ts';
import type { FileHandle, Lock, Storage } from './storage.ts';
import { CreatedNames, refuseOccupiedVolumeDir, refuseSecondaryPlace } from './volumeNamespace.ts';
import {
  asVolumeError,
  OpenedFiles,
  releaseLock,
  unheldLock,
  type CreateOptions,
  type VolumeParts,
  type VolumeRules,
} from './volumeParts.ts';

/** The secondary as the metadata records it, and its kind: E_BAD_REQUEST for options that ask for two, or a bad URL. */
function recordedOf(dir: string, options: CreateOptions): { recorded: string; kind: SecondaryKind } {
  const { secondaryDir, secondaryUrl, consistentSecondaryDir } = options;
  if ([secondaryDir, secondaryUrl, consistentSecondaryDir].filter((given) => given !== undefined).length > 1) {
    throw new CowmapError(
      'E_BAD_REQUEST',
      'create: give one secondary: a directory, an NBD URL or a consistent directory',
    );
  }
  if (secondaryUrl !== undefined) {
    checkNbdUrl(secondaryUrl);
    return { recorded: secondaryUrl, kind: secondaryKindOf(secondaryUrl) };
  }
  const localDir = consistentSecondaryDir ?? secondaryDir;
  // A mistyped URL must not become folders under the working directory.
  if (localDir !== undefined) refuseUrlAsDirectory(localDir);
  if (localDir !== undefined && sameDir(dir, localDir)) {
    throw new CowmapError('E_BAD_REQUEST', `create: the secondary must not be the volume directory ${dir}`);
  }
  const recorded =
    consistentSecondaryDir === undefined
      ? recordedSecondary(dir, secondaryDir)
      : `${consistentPrefix}${recordedSecondary(dir, consistentSecondaryDir)}`;
  const kind = secondaryKindOf(recorded);
  if (kind.kind === 'nbd' || (consistentSecondaryDir === undefined && kind.kind !== 'directory'))
    throw new CowmapError('E_BAD_REQUEST', `create: the secondary directory ${secondaryDir} reads as another kind`);
  return { recorded, kind };
}

/**
 * What create refuses before it makes anything: the arguments before the state,
 * E_BAD_REQUEST before E_SIZE (docs/protocol.md section 2), then E_EXISTS for a
 * place that holds files. Returns the secondary as recorded, its kind and its
 * directory (null for an NBD secondary: nothing of it is local but DIR/remote-digests).
 */
function refuseCreate(
  storage: Storage,
  dir: string,
  geometry: Geometry,
  options: CreateOptions,
  rules: VolumeRules,
): { recorded: string; kind: SecondaryKind; secondaryDir: string | null } {
  const { recorded, kind } = recordedOf(dir, options);
  if (new TextEncoder().encode(recorded).length > secondaryBytesMax) {
    throw new CowmapError(
      'E_BAD_REQUEST',
      `create: the secondary ${recorded} is longer than ${secondaryBytesMax} bytes`,
    );
  }
  const problem = rules.geometryProblem({ regions: geometry.regions, regionSize: geometry.regionSize });
  if (problem !== null) throw new CowmapError('E_SIZE', `create: ${problem}`);
  const secondaryDir = localSecondaryDir(dir, kind);
  try {
    if (rules.refusesExistingVolume) {
      refuseOccupiedVolumeDir(storage, dir);
      if (secondaryDir !== null) refuseSecondaryPlace(storage, dir, secondaryDir);
    }
  } catch (error) {
    throw asVolumeError(error, `create(${dir})`, 'E_IO');
  }
  return { recorded, kind, secondaryDir };
}

/**
 * Makes the files of a volume in `dir` and returns them open, the lock held.
 * E_BAD_REQUEST, E_SIZE, E_EXISTS, E_LOCKED as docs/protocol.md section 2 orders
 * them, all before anything is created; a storage error is E_IO.
 */
export function createVolumeParts(
  storage: Storage,
  dir: string,
  geometry: Geometry,
  options: CreateOptions,
  rules: VolumeRules,
): VolumeParts {
  const { recorded, kind, secondaryDir } = refuseCreate(storage, dir, geometry, options, rules);
  const opened = new OpenedFiles();
  const created = new CreatedNames(storage);
  let lock: Lock | null = null;
  try {
    created.makeDirs(dir);
    lock = takeCreateLock(storage, dir, rules, created);
    if (rules.refusesExistingVolume)
      refuseOccupiedVolumeDir(storage, dir); // Again, now that no other create can be at work here.
    else removeExistingVolume(storage, dir, secondaryDir);

    const { regions, regionSize } = geometry;
    // Each file is created at its full size (all zeros: P, S, both maps clear, no
    // valid COW entry) and synced before the metadata that makes it part of a volume.
    const createFile = (name: string, sizeBytes: number): FileHandle => {
      const path = volumePath(dir, name);
      const file = opened.add(storage.open(path, { create: true }));
      created.addFile(path);
      file.truncate(sizeBytes);
      file.sync();
      return file;
    };
    const primaryFile = createFile(fileNames.primary, volumeSize(geometry));
    const mapFiles = [
      createFile(fileNames.maps[0], mapFileSize(regions)),
      createFile(fileNames.maps[1], mapFileSize(regions)),
    ] as const;
    const cowFile = createFile(fileNames.cow, cowFileSize(regions, regionSize));
    const volumeId = new Uint8Array(randomBytes(volumeIdSize));
    opened.replica = createSecondary(
      storage,
      dir,
      kind,
      secondaryDir,
      { volumeId, regions, regionSize },
      options,
      created,
    );
    storage.syncDir(dir);

    const record: MetadataRecord = {
      sequence: 1,
      volumeId,
      regions,
      regionSize,
      cycle: 0,
      phase: 'idle',
      currentMap: 0,
      secondary: recorded,
    };
    // meta.tmp, then its rename to meta, then a sync of DIR: the volume exists once that sync returns.
    created.addFile(volumePath(dir, fileNames.metadataTemporary));
    created.addFile(volumePath(dir, fileNames.metadata));
    const metadata = MetadataStore.create(storage, dir, record);
    opened.add(metadata.file);
    return {
      storage,
      dir,
      lock,
      metadata,
      maps: [MapFile.load(mapFiles[0], regions), MapFile.load(mapFiles[1], regions)],
      primary: new RegionFile(primaryFile, regions, regionSize),
      cow: CowStore.load(cowFile, regions, regionSize),
      replica: opened.replica,
      readOnly: false,
    };
  } catch (error) {
    opened.closeAll();
    // Removed while the lock is held (its file too, when this create made it). Only
    // after an error the process lives on from: a harness's simulated crash is the
    // process dying, which removes nothing.
    let cleanupError: unknown = null;
    try {
      if (rules.refusesExistingVolume && (isStorageError(error) || error instanceof CowmapError))
        cleanupError = created.undo();
    } finally {
      if (lock !== null) releaseLock(lock);
    }
    throw withCleanupError(asVolumeError(error, `create(${dir})`, 'E_IO'), cleanupError);
  }
}

/**
 * Makes the secondary (impl/remote/replicaKinds.ts) and records what it made for a
 * failed create to remove: its directory's files (the place was empty or missing),
 * or DIR/remote-digests. A replica syncs its own directory; a remote one's claim of
 * the far side is durable (FLUSHed) when this returns.
 */
function createSecondary(
  storage: Storage,
  dir: string,
  kind: SecondaryKind,
  secondaryDir: string | null,
  identity: ReplicaIdentity,
  options: CreateOptions,
  created: CreatedNames,
): Replica {
  if (secondaryDir === null) created.addFile(volumePath(dir, fileNames.remoteDigests));
  else created.makeDirs(secondaryDir);
  try {
    const choice = { link: options.link, linkFactory: options.linkFactory };
    return createReplica(storage, dir, kind, secondaryDir, identity, choice);
  } finally {
    if (secondaryDir !== null && storage.exists(secondaryDir))
      for (const name of storage.list(secondaryDir)) created.addFile(volumePath(secondaryDir, name));
  }
}

/**
 * Takes the lock of a new volume's directory. The lock file is this create's when
 * it was not there before: a failure removes it (while holding the lock, so that
 * no taker is left holding a removed file: impl/nodeStorage.ts checks for that).
 */
function takeCreateLock(storage: Storage, dir: string, rules: VolumeRules, created: CreatedNames): Lock {
  const lockPath = volumePath(dir, fileNames.lock);
  const lockFileExisted = storage.exists(lockPath);
  const lock = storage.lock(dir) ?? (rules.honoursLock ? null : unheldLock);
  if (lock === null) throw new CowmapError('E_LOCKED', `create: ${dir} is locked by another holder`);
  if (!lockFileExisted && storage.exists(lockPath)) created.addFile(lockPath);
  return lock;
}

/** Only for the mutant that creates over an existing volume: the files the old create used to remove. */
function removeExistingVolume(storage: Storage, dir: string, secondaryDir: string | null): void {
  for (const name of volumeFileNames) {
    const path = volumePath(dir, name);
    if (storage.exists(path)) storage.unlink(path);
  }
  if (secondaryDir === null || !storage.exists(secondaryDir)) return;
  for (const name of storage.list(secondaryDir)) storage.unlink(volumePath(secondaryDir, name));
}

/** The error create reports, with the failure of its cleanup when that failed too. */
function withCleanupError(error: unknown, cleanupError: unknown): unknown {
  if (cleanupError === null || !(error instanceof CowmapError)) return error;
  const detail = cleanupError instanceof Error ? cleanupError.message : String(cleanupError);
  return new CowmapError(
    error.code,
    `${error.message}; removing what this create made failed too (${detail}): remove the leftovers by hand`,
    { cause: error },
  );
}
