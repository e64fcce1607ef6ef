// nbdFirstWriteOverFloor: what the NBD write path (writeMany, then flush) costs for
// a first write in a running cycle, over the floor of the I/O such a write must do,
// measured in process on the section's geometry. Ours: a volume in a running cycle
// (created, every region written durably, startCycle), then per region one
// writeMany of 4 KiB and a flush: the old region read and preserved (COW slot and
// entry, one fdatasync of the COW file), the 4 KiB pwritten into P, one fdatasync
// of P. The floor, with node:fs on plain files of the same size: pread the region
// from a primary file, pwrite it into a copy file, fdatasync the copy, pwrite the
// 4 KiB into the primary, fdatasync the primary. The writes go in chunks of a few
// regions; each chunk is one repetition in which the two take turns going first.

import { closeSync, fdatasyncSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { bytesEqual } from '../impl/checksum.ts';
import { NodeStorage } from '../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { CountingStorage, type IoCounts } from '../harness/storage/countingStorage.ts';
import { rotated } from './rotation.ts';
import { SeededBytes } from './seededBytes.ts';
import { emptySeries } from './series.ts';
import { timeSeconds } from './stats.ts';

export interface FirstWriteConfig {
  readonly root: string;
  readonly regions: number;
  readonly regionSize: number;
  /** First writes measured, one region each; a multiple of chunkRegions and at most `regions`. */
  readonly firstWrites: number;
  readonly chunkRegions: number;
  readonly seed: number;
}

const writeBytes = 4096;
const fillChunkBytes = 8 << 20;

/** The floor's two plain files: the primary (filled) and the copy (sparse, as a fresh COW store's slots). */
class FloorPair {
  private readonly primaryFd: number;
  private readonly copyFd: number;
  private readonly old: Uint8Array;

  constructor(
    dir: string,
    content: Uint8Array,
    private readonly regionSize: number,
  ) {
    this.primaryFd = openSync(join(dir, 'floor-primary'), 'wx+');
    if (writeSync(this.primaryFd, content, 0, content.length, 0) !== content.length)
      throw new Error('floor: short fill');
    fdatasyncSync(this.primaryFd);
    this.copyFd = openSync(join(dir, 'floor-copy'), 'wx+');
    ftruncateSync(this.copyFd, content.length);
    fdatasyncSync(this.copyFd);
    this.old = new Uint8Array(regionSize);
  }

  firstWrite(region: number, data: Uint8Array): void {
    const { regionSize } = this;
    if (readSync(this.primaryFd, this.old, 0, regionSize, region * regionSize) !== regionSize)
      throw new Error(`floor: short read at region ${region}`);
    writeSync(this.copyFd, this.old, 0, regionSize, region * regionSize);
    fdatasyncSync(this.copyFd);
    writeSync(this.primaryFd, data, 0, data.length, region * regionSize);
    fdatasyncSync(this.primaryFd);
  }

  close(): void {
    closeSync(this.primaryFd);
    closeSync(this.copyFd);
  }
}

/** A volume in a running cycle: created, every region written durably (writeMany, flush), then startCycle. */
function volumeInCycle(
  storage: CountingStorage,
  dir: string,
  content: Uint8Array,
  config: FirstWriteConfig,
): ReplicatedVolume {
  const volume = ReplicatedVolume.create(storage, dir, {
    regions: config.regions,
    regionSize: config.regionSize,
  });
  for (let offset = 0; offset < content.length; offset += fillChunkBytes) {
    volume.writeMany([{ offset, bytes: content.subarray(offset, offset + fillChunkBytes) }]);
  }
  volume.flush();
  volume.startCycle();
  return volume;
}

export interface FirstWriteOutcome {
  /** Per chunk: seconds of ours and of the floor. */
  readonly series: { oursSeconds: number[]; floorSeconds: number[] };
  /** What went wrong with the volume's result (a region not preserved, bytes not read back). */
  readonly failures: string[];
  /** The volume's I/O over all of its first writes (the floor's is 1 read, 2 writes, 2 fdatasyncs a write). */
  readonly oursIo: IoCounts;
}

/** Runs the chunks; the volume and the floor's files are made, and removed with `root`, by the section. */
export function measureFirstWrites(config: FirstWriteConfig): FirstWriteOutcome {
  const { regions, regionSize, firstWrites, chunkRegions } = config;
  if (firstWrites % chunkRegions !== 0 || firstWrites > regions)
    throw new RangeError('nbd first writes: firstWrites must be a multiple of chunkRegions and at most regions');
  const dir = join(config.root, 'nbd-first-write');
  mkdirSync(dir);
  const bytes = new SeededBytes(config.seed);
  const content = bytes.next(regions * regionSize);
  const data = bytes.next(firstWrites * writeBytes);
  const storage = new CountingStorage(new NodeStorage());
  const volume = volumeInCycle(storage, join(dir, 'volume'), content, config);
  const floor = new FloorPair(dir, content, regionSize);
  const series = emptySeries('oursSeconds', 'floorSeconds');
  const failures: string[] = [];
  const dataOf = (index: number) => data.subarray(index * writeBytes, (index + 1) * writeBytes);
  let oursIo: IoCounts;
  try {
    storage.take();
    for (let chunk = 0; chunk < firstWrites / chunkRegions; chunk++) {
      const indexes = Array.from({ length: chunkRegions }, (_, index) => chunk * chunkRegions + index);
      const ours = () => {
        series.oursSeconds.push(
          timeSeconds(() => {
            for (const index of indexes) {
              volume.writeMany([{ offset: index * regionSize, bytes: dataOf(index) }]);
              volume.flush();
            }
          }),
        );
      };
      const floorChunk = () => {
        series.floorSeconds.push(
          timeSeconds(() => {
            for (const index of indexes) floor.firstWrite(index, dataOf(index));
          }),
        );
      };
      for (const body of rotated([ours, floorChunk], chunk)) body();
    }
    oursIo = storage.take();
    checkFirstWrites(volume, firstWrites, regionSize, dataOf, failures);
  } finally {
    volume.close();
    floor.close();
  }
  return { series, failures, oursIo };
}

/** Every written region was preserved in this cycle and reads back the bytes written. */
function checkFirstWrites(
  volume: ReplicatedVolume,
  firstWrites: number,
  regionSize: number,
  dataOf: (index: number) => Uint8Array,
  failures: string[],
): void {
  const preserved = volume.preservedRegions().length;
  if (preserved !== firstWrites) failures.push(`${preserved} region(s) preserved after ${firstWrites} first writes`);
  for (let index = 0; index < firstWrites; index++) {
    if (!bytesEqual(volume.read(index * regionSize, writeBytes), dataOf(index))) {
      failures.push(`region ${index} does not read back its 4 KiB`);
      return;
    }
  }
}
