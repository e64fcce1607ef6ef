// The cycle benchmark's volume, made once and reused by the cycle and memory
// sections: its primary filled with seeded bytes through node:fs before the volume
// is opened (so it is fully allocated, not sparse, and rsync reads real data), and
// its secondary image a copy of it: the state after an initial full synchronisation.

import { closeSync, copyFileSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { NodeStorage } from '../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import type { Log } from './report.ts';
import { SeededBytes } from './seededBytes.ts';
import { syncFile } from './system.ts';

export interface CycleVolume {
  readonly dir: string;
  readonly primaryPath: string;
  readonly imagePath: string;
  readonly regions: number;
  readonly regionSize: number;
}

export interface CycleVolumeConfig {
  readonly root: string;
  readonly regions: number;
  readonly regionSize: number;
  readonly seed: number;
}

const fillChunkBytes = 8 << 20;

/** Fills a file with seeded bytes, chunk by chunk, then fdatasync. */
function fillFile(path: string, sizeBytes: number, seed: number): void {
  const bytes = new SeededBytes(seed);
  const fd = openSync(path, 'r+');
  try {
    for (let position = 0; position < sizeBytes; position += fillChunkBytes) {
      const chunk = bytes.next(Math.min(fillChunkBytes, sizeBytes - position));
      const written = writeSync(fd, chunk, 0, chunk.length, position);
      if (written !== chunk.length) throw new Error(`fill: short write at ${position} of ${path}`);
    }
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function prepareCycleVolume(config: CycleVolumeConfig, log: Log): CycleVolume {
  const dir = join(config.root, 'cycle-volume');
  const { regions, regionSize } = config;
  const sizeBytes = regions * regionSize;
  log(
    `  cycle: creating a volume of ${regions} regions x ${regionSize / 1024} KiB ` +
      `(${(sizeBytes / (1 << 30)).toFixed(2)} GiB) and filling its primary with seeded bytes`,
  );
  ReplicatedVolume.create(new NodeStorage(), dir, { regions, regionSize }).close();
  const primaryPath = join(dir, 'primary');
  const imagePath = join(dir, 'secondary', 'image');
  fillFile(primaryPath, sizeBytes, config.seed);
  // The secondary as after an initial full synchronisation.
  copyFileSync(primaryPath, imagePath);
  syncFile(imagePath);
  return { dir, primaryPath, imagePath, regions, regionSize };
}
