// open: the files of an existing volume, each synced before it is read and
// checked against the metadata, in the order docs/format.md ("open") gives.
// Recovery proper (finishing a completion, resuming a cycle) is
// ReplicatedVolume.recover, run on the parts this returns.

import { CowStore } from './cowStore.ts';
import { CowmapError } from './errors.ts';
import { volumeSize } from './geometry.ts';
import { fileNames, volumePath } from './layout.ts';
import { MapFile } from './mapFile.ts';
import { MetadataStore } from './metadata.ts';
import { RegionFile } from './regionFile.ts';
import { localSecondaryDir, openReplica, secondaryKindOf } from './remote/replicaKinds.ts';
import type { FileHandle, Lock, Storage } from './storage.ts';
import {
  asVolumeError,
  OpenedFiles,
  releaseLock,
  unheldLock,
  type OpenOptions,
  type VolumeParts,
  type VolumeRules,
} from './volumeParts.ts';

/**
 * Opens the files of the volume in `dir`, the lock held (shared when read-only).
 * E_NOT_FOUND, E_LOCKED, or E_CORRUPT for anything that is not a volume this
 * build wrote. A read-only open opens every file O_RDONLY and syncs nothing.
 */
export function openVolumeParts(storage: Storage, dir: string, options: OpenOptions, rules: VolumeRules): VolumeParts {
  const readOnly = options.readOnly === true;
  const metadataPath = volumePath(dir, fileNames.metadata);
  if (!storage.exists(metadataPath)) throw new CowmapError('E_NOT_FOUND', `open: no volume in ${dir}`);
  let lock: Lock | null;
  try {
    lock = storage.lock(dir, { shared: readOnly }) ?? (rules.honoursLock ? null : unheldLock);
  } catch (error) {
    throw asVolumeError(error, `open(${dir}): taking the lock`, 'E_IO');
  }
  if (lock === null) throw new CowmapError('E_LOCKED', `open: ${dir} is locked by another holder`);

  const opened = new OpenedFiles();
  try {
    // Nothing is read before its name is durable: a create killed after its
    // metadata rename and before the directory sync leaves a `meta` entry that a
    // power loss may still take away, and acknowledged writes with it. So DIR is
    // synced first, and the secondary's directory before the secondary is read.
    const syncing = rules.syncFilesAtOpen && !readOnly;
    if (syncing) storage.syncDir(dir);
    // Every file is synced before it is read. After a process kill the page cache
    // still holds writes that were never synced; recovery must not build on them
    // as if durable (a power loss later could take them back: a next bit read
    // from the cache and never written again, a COW entry, a region of P or S).
    // Syncing first makes what recovery reads durable; it keeps a subset of the
    // crashed operation's unsynced writes, which docs/protocol.md section 5 allows.
    // A read-only open syncs nothing: what it reads may be undone by a power loss,
    // and it acts on nothing it reads.
    const openFile = (name: string): FileHandle => {
      const path = volumePath(dir, name);
      if (!storage.exists(path)) throw new CowmapError('E_CORRUPT', `open: ${path} is missing`);
      const file = opened.add(storage.open(path, { create: false, readOnly }));
      if (syncing) file.sync();
      return file;
    };
    const metadata = MetadataStore.load(openFile(fileNames.metadata));
    const { regions, regionSize, volumeId, secondary } = metadata.record;
    const primaryFile = openFile(fileNames.primary);
    const primarySize = primaryFile.size();
    if (primarySize !== volumeSize(metadata.record)) {
      throw new CowmapError(
        'E_CORRUPT',
        `open: ${primaryFile.path} is ${primarySize} bytes, not ${volumeSize(metadata.record)}`,
      );
    }
    const maps: [MapFile, MapFile] = [
      MapFile.load(openFile(fileNames.maps[0]), regions),
      MapFile.load(openFile(fileNames.maps[1]), regions),
    ];
    const cow = CowStore.load(openFile(fileNames.cow), regions, regionSize);
    // A local secondary's directory (null for an NBD one, whose far side open never contacts).
    const kind = secondaryKindOf(secondary);
    const recordedDir = localSecondaryDir(dir, kind);
    const replicaDir = recordedDir === null ? null : (options.secondaryDir ?? recordedDir);
    if (syncing && replicaDir !== null && storage.exists(replicaDir)) storage.syncDir(replicaDir);
    const at = { cycle: metadata.record.cycle, replicating: metadata.record.phase === 'replicating' };
    const choice = { link: options.link, linkFactory: options.linkFactory, readOnly, syncAtOpen: syncing };
    opened.replica = openReplica(storage, dir, kind, replicaDir, { volumeId, regions, regionSize }, at, choice);
    return {
      storage,
      dir,
      lock,
      metadata,
      maps,
      primary: new RegionFile(primaryFile, regions, regionSize),
      cow,
      replica: opened.replica,
      readOnly,
    };
  } catch (error) {
    opened.closeAll();
    releaseLock(lock);
    // A file that the metadata needs and that is missing: the volume is inconsistent.
    throw asVolumeError(error, `open(${dir})`, 'E_CORRUPT');
  }
}
