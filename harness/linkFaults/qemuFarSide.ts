// A second plain far side: `qemu-nbd -f raw` on an image file of the export's size,
// over a Unix socket, its state the file itself (its default cache is writeback: a
// WRITE it replied to is in the page cache, which a kill of the server keeps).

import { closeSync, ftruncateSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { FarSideSpec } from './farSide.ts';

/** An all-zero image of `exportSize` bytes in `dir`, and qemu-nbd serving it on a socket in `dir`. */
export function qemuNbdFarSide(dir: string, exportSize: number): FarSideSpec & { readonly imagePath: string } {
  const imagePath = join(dir, 'export.img');
  const fd = openSync(imagePath, 'wx');
  try {
    ftruncateSync(fd, exportSize);
  } finally {
    closeSync(fd);
  }
  const socketPath = join(dir, 'far.sock');
  return {
    command: 'qemu-nbd',
    // -t: serves connection after connection (the replica reconnects after every fault).
    args: ['-f', 'raw', '-t', '-k', socketPath, imagePath],
    socketPath,
    statePaths: [imagePath],
    snapshotDir: join(dir, 'snapshots'),
    plainImagePath: imagePath,
    imagePath,
  };
}
