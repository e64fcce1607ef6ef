// create: the files of a new, all-zero volume and its secondary, in the durable
// order docs/format.md ("create") gives. The metadata is written last (see
// MetadataStore.create): until its rename is durable there is no volume, and the
// leftovers of a create cut short are removed by the next create.

import { randomBytes } from 'node:crypto';
import { cowFileSize, CowStore } from './cowStore.ts';
import { CowmapError } from './errors.ts';
import { mapSize, volumeSize, type Geometry } from './geometry.ts';
import { fileNames, parentDir, recordedSecondary, sameDir, secondaryPath, volumeFileNames, volumePath } from './layout.ts';
import { MapFile } from './mapFile.ts';
import { MetadataStore, secondaryBytesMax, volumeIdSize, type MetadataRecord } from './metadata.ts';
import { RegionFile } from './regionFile.ts';
import { FileReplica } from './replica.ts';
import type { FileHandle, Lock, Storage } from './storage.ts';
import { asVolumeError, OpenedFiles, releaseLock, unheldLock, type CreateOptions, type VolumeParts, type VolumeRules } from './volumeParts.ts';

/**
 * Makes the files of a volume in `dir` and returns them open, the lock held.
 * E_BAD_REQUEST, E_SIZE, E_EXISTS, E_LOCKED as docs/protocol.md section 2 orders
 * them; a storage error is E_IO.
 */
export function createVolumeParts(storage: Storage, dir: string, geometry: Geometry, options: CreateOptions, rules: VolumeRules): VolumeParts {
  // The arguments before the state, E_BAD_REQUEST before E_SIZE (docs/protocol.md section 2).
  const recorded = recordedSecondary(dir, options.secondaryDir);
  if (options.secondaryDir !== undefined && sameDir(dir, options.secondaryDir)) {
    throw new CowmapError('E_BAD_REQUEST', `create: the secondary must not be the volume directory ${dir}`);
  }
  if (new TextEncoder().encode(recorded).length > secondaryBytesMax) {
    throw new CowmapError('E_BAD_REQUEST', `create: the secondary path ${recorded} is longer than ${secondaryBytesMax} bytes`);
  }
  const problem = rules.geometryProblem({ regions: geometry.regions, regionSize: geometry.regionSize });
  if (problem !== null) throw new CowmapError('E_SIZE', `create: ${problem}`);
  const metadataPath = volumePath(dir, fileNames.metadata);
  if (rules.refusesExistingVolume && storage.exists(metadataPath)) throw new CowmapError('E_EXISTS', `create: a volume exists in ${dir}`);

  const opened = new OpenedFiles();
  let lock: Lock | null = null;
  try {
    if (!storage.exists(dir)) {
      storage.mkdir(dir);
      storage.syncDir(parentDir(dir));
    }
    lock = storage.lock(dir) ?? (rules.honoursLock ? null : unheldLock);
    if (lock === null) throw new CowmapError('E_LOCKED', `create: ${dir} is locked by another holder`);
    if (rules.refusesExistingVolume && storage.exists(metadataPath)) throw new CowmapError('E_EXISTS', `create: a volume exists in ${dir}`);
    for (const name of volumeFileNames) {
      const path = volumePath(dir, name);
      if (storage.exists(path)) storage.unlink(path);
    }

    const { regions, regionSize } = geometry;
    // Each file is created at its full size (all zeros: P, S, both maps clear, no
    // valid COW entry) and synced before the metadata that makes it part of a volume.
    const createFile = (name: string, sizeBytes: number): FileHandle => {
      const file = opened.add(storage.open(volumePath(dir, name), { create: true }));
      file.truncate(sizeBytes);
      file.sync();
      return file;
    };
    const primaryFile = createFile(fileNames.primary, volumeSize(geometry));
    const mapFiles = [createFile(fileNames.maps[0], mapSize(regions)), createFile(fileNames.maps[1], mapSize(regions))] as const;
    const cowFile = createFile(fileNames.cow, cowFileSize(regions, regionSize));
    const volumeId = new Uint8Array(randomBytes(volumeIdSize));
    opened.replica = FileReplica.create(storage, secondaryPath(dir, recorded), { volumeId, regions, regionSize });
    storage.syncDir(dir);

    const record: MetadataRecord = { sequence: 1, volumeId, regions, regionSize, cycle: 0, phase: 'idle', currentMap: 0, secondary: recorded };
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
    if (lock !== null) releaseLock(lock);
    throw asVolumeError(error, `create(${dir})`, 'E_IO');
  }
}
