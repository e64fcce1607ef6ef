// The names of a volume's files (docs/format.md, "Files"). A volume directory DIR
// holds the metadata, the primary image, the two maps and the COW store; the
// secondary lives in its own directory (DIR/secondary unless created elsewhere).

import { dirname, join, relative, resolve } from 'node:path';

export const fileNames = {
  metadata: 'meta',
  metadataTemporary: 'meta.tmp',
  primary: 'primary',
  maps: ['map0', 'map1'],
  cow: 'cow',
  /** The volume lock (impl/nodeStorage.ts): a kernel lock on this file, never its content. */
  lock: 'lock',
  replicaHeader: 'replica',
  replicaImage: 'image',
  defaultSecondary: 'secondary',
  /** The digest table of a remote secondary (docs/remote.md): in DIR, since the far side is a plain export. */
  remoteDigests: 'remote-digests',
} as const;

/** The files of a volume directory that create writes before the metadata. */
export const volumeFileNames = [
  fileNames.metadataTemporary,
  fileNames.primary,
  fileNames.maps[0],
  fileNames.maps[1],
  fileNames.cow,
  fileNames.remoteDigests,
] as const;

export function volumePath(dir: string, name: string): string {
  return join(dir, name);
}

/** The parent directory whose entry for `dir` a directory sync makes durable. */
export function parentDir(dir: string): string {
  return dirname(dir);
}

/**
 * The secondary's location as the metadata records it: relative to the volume
 * directory, so that a volume and its secondary moved together still find each
 * other; "" stands for the default DIR/secondary.
 */
export function recordedSecondary(dir: string, secondaryDir: string | undefined): string {
  if (secondaryDir === undefined) return '';
  return relative(dir, secondaryDir);
}

export function secondaryPath(dir: string, recorded: string): string {
  return recorded === '' ? join(dir, fileNames.defaultSecondary) : join(dir, recorded);
}

export function sameDir(a: string, b: string): boolean {
  return resolve(a) === resolve(b);
}
