// The far side most tests put behind the fault proxy: `nbdkit file` on an image
// file of the export's size, over a Unix socket, its state the file itself.

import { closeSync, openSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import type { FarSideSpec } from './farSide.ts';

/** An all-zero image of `exportSize` bytes in `dir`, and nbdkit serving it on a socket in `dir`. */
export function nbdkitFileFarSide(dir: string, exportSize: number): FarSideSpec & { readonly imagePath: string } {
  const imagePath = join(dir, 'export.img');
  const fd = openSync(imagePath, 'wx');
  try {
    ftruncateSync(fd, exportSize);
  } finally {
    closeSync(fd);
  }
  const socketPath = join(dir, 'far.sock');
  return {
    command: 'nbdkit',
    // -f: stays in the foreground, so that its pid is the server's and a kill is a crash of it.
    args: ['-f', '--exit-with-parent', '-U', socketPath, 'file', imagePath],
    socketPath,
    statePaths: [imagePath],
    snapshotDir: join(dir, 'snapshots'),
    plainImagePath: imagePath,
    imagePath,
  };
}
