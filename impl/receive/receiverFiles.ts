// The files of a receiver's store in DIR2 (docs/format.md, "The receiver's files"):
// their names, how create makes them (and removes them again when it fails), and
// how open finds and checks them. The store (receiverStore.ts) decides what they hold.

import { CowmapError } from '../errors.ts';
import { fileNames, parentDir, volumeFileNames, volumePath } from '../layout.ts';
import type { FileHandle, Lock, Storage } from '../storage.ts';
import { type ReceiverState, ReceiverStateFile } from './receiverState.ts';
import { closeQuietly, removeQuietly } from '../createdFiles.ts';

export const receiverFileNames = {
  state: 'receiver',
  stateTemporary: 'receiver.tmp',
  image: fileNames.replicaImage,
  journals: ['journal0', 'journal1'],
} as const;

export interface ReceiverPaths {
  readonly state: string;
  readonly stateTemporary: string;
  readonly image: string;
  readonly journals: readonly [string, string];
}

export function receiverPaths(dir: string): ReceiverPaths {
  return {
    state: volumePath(dir, receiverFileNames.state),
    stateTemporary: volumePath(dir, receiverFileNames.stateTemporary),
    image: volumePath(dir, receiverFileNames.image),
    journals: [volumePath(dir, receiverFileNames.journals[0]), volumePath(dir, receiverFileNames.journals[1])],
  };
}

/** The files of an open store. */
export interface ReceiverFiles {
  readonly state: ReceiverStateFile;
  readonly image: FileHandle;
  readonly journals: readonly [FileHandle, FileHandle];
  readonly lock: Lock;
}

/** Takes DIR2's lock: exclusive to write, shared to read; E_LOCKED when another holder has it. */
export function lockReceiver(storage: Storage, dir: string, readOnly: boolean): Lock {
  const lock = storage.lock(dir, { shared: readOnly });
  if (lock === null)
    throw new CowmapError('E_LOCKED', `${dir}: the receiver's store is in use (another cowmap holds its lock)`);
  return lock;
}

/**
 * Makes the files of a new store: the image (exportSize zeros, synced), two empty
 * journals, then the state through a synced temporary file renamed into place, and
 * the directory synced: until that rename is durable there is no store. Refuses
 * (E_EXISTS) a DIR2 that holds any of these names, a directory secondary's header, or
 * a volume's files (`cowmap receive` given a primary's DIR would fill it with a
 * second kind of files); on failure removes exactly what it made.
 */
export function createReceiverFiles(storage: Storage, dir: string, first: ReceiverState): ReceiverFiles {
  const paths = receiverPaths(dir);
  for (const path of [
    paths.state,
    paths.stateTemporary,
    paths.image,
    ...paths.journals,
    volumePath(dir, fileNames.replicaHeader),
    volumePath(dir, fileNames.metadata),
    ...volumeFileNames.map((name) => volumePath(dir, name)),
  ])
    if (storage.exists(path)) throw new CowmapError('E_EXISTS', `create: ${path} exists; DIR2 must hold no secondary`);
  const created: string[] = [];
  const handles: FileHandle[] = [];
  let madeDir = false;
  let lock: Lock | null = null;
  const createFile = (path: string): FileHandle => {
    const file = storage.open(path, { create: true });
    created.push(path);
    handles.push(file);
    return file;
  };
  try {
    if (!storage.exists(dir)) {
      storage.mkdir(dir);
      madeDir = true;
      storage.syncDir(parentDir(dir));
    }
    lock = lockReceiver(storage, dir, false);
    const image = createFile(paths.image);
    image.truncate(first.exportSize);
    image.sync();
    const journals: [FileHandle, FileHandle] = [createFile(paths.journals[0]), createFile(paths.journals[1])];
    created.push(paths.stateTemporary);
    const state = ReceiverStateFile.create(storage, paths.state, paths.stateTemporary, first);
    created.pop();
    created.push(paths.state);
    handles.push(state.file);
    storage.syncDir(dir);
    return { state, image, journals, lock };
  } catch (error) {
    for (const file of handles) closeQuietly(file);
    removeQuietly(storage, dir, created, madeDir);
    lock?.release();
    throw error;
  }
}

/**
 * Opens the files of the store in `dir`: E_NOT_FOUND when `dir` holds no store (no
 * state file: until the rename of create is durable there is none, as a volume has
 * none before DIR/meta), E_CORRUPT when another of its files is missing or the image
 * is not the state's export size. Unless read-only every file is synced before it
 * is read, as every file of the volume at open (impl/openVolume.ts): recovery never
 * trusts what a killed process left in the page cache.
 */
export function openReceiverFiles(storage: Storage, dir: string, readOnly: boolean): ReceiverFiles {
  const paths = receiverPaths(dir);
  if (!storage.exists(paths.state))
    throw new CowmapError('E_NOT_FOUND', `open: ${dir} holds no receiver's store (${paths.state} is missing)`);
  for (const path of [paths.image, ...paths.journals])
    if (!storage.exists(path)) throw new CowmapError('E_CORRUPT', `open: ${path} is missing`);
  const lock = lockReceiver(storage, dir, readOnly);
  const handles: FileHandle[] = [];
  const openFile = (path: string): FileHandle => {
    const file = storage.open(path, { create: false, readOnly });
    handles.push(file);
    if (!readOnly) file.sync();
    return file;
  };
  try {
    const state = ReceiverStateFile.load(openFile(paths.state));
    const image = openFile(paths.image);
    const { exportSize } = state.state;
    if (image.size() !== exportSize)
      throw new CowmapError('E_CORRUPT', `open: ${paths.image} is ${image.size()} bytes, not ${exportSize}`);
    const journals: [FileHandle, FileHandle] = [openFile(paths.journals[0]), openFile(paths.journals[1])];
    return { state, image, journals, lock };
  } catch (error) {
    for (const file of handles) closeQuietly(file);
    lock.release();
    throw error;
  }
}

/**
 * Removes a store's files from `dir` (a `consistent:` secondary whose create failed
 * after the store was made), the removals made durable; errors ignored.
 */
export function removeReceiverFiles(storage: Storage, dir: string, extra: readonly string[] = []): void {
  const paths = receiverPaths(dir);
  removeQuietly(storage, dir, [paths.image, ...paths.journals, paths.state, ...extra], false);
}
