// Where rot flips a byte: offsets aimed at each structure of a volume's files
// (docs/format.md), at the regions the exploration writes: each metadata slot's
// magic, version, sequence, cycle, phase, map byte and CRC; each map page's bits,
// stamp and CRC; each COW entry's fields and its data slot; the secondary's
// header, its image regions and its digest table's entries, page index and CRC.
// A file this does not know is flipped at its first and last byte.
//
// Every file of the volume and of its secondary is flipped except `primary`: the
// primary has no checksum by design (docs/format.md): the client's bytes are the
// truth, and a flipped byte there is a new truth that the next write of the
// region, or the cycle after it, sends. The lock file is not data either.
//
// The offsets of the fields inside a record are read from docs/format.md here
// (impl/ keeps its own private); the record sizes are impl/'s exported ones.

import { posix } from 'node:path';
import { cowIndexSize, entrySize } from '../../impl/cowStore.ts';
import { digestPageBytes, entriesPerPage } from '../../impl/digestTable.ts';
import { pageBitBytes, pageBytes, regionsPerPage } from '../../impl/mapPage.ts';
import { slotCount, slotSize } from '../../impl/metadata.ts';
import type { ExplorationSut } from '../sut/explorationSut.ts';
import { volumeDir } from '../sut/explorationSut.ts';

export interface RotTarget {
  readonly path: string;
  readonly offset: number;
  /** The structure hit, in words. */
  readonly what: string;
}

const metaFields: ReadonlyArray<[number, string]> = [
  [0, 'magic'],
  [8, 'format version'],
  [16, 'sequence'],
  [48, 'cycle'],
  [56, 'phase'],
  [57, 'current map'],
  [508, 'CRC'],
];
const entryFields: ReadonlyArray<[number, string]> = [
  [0, 'cycle'],
  [8, 'region'],
  [16, 'digest'],
  [48, 'stamp'],
  [60, 'CRC'],
];
const mapPageFields: ReadonlyArray<[number, string]> = [
  [4080, 'stamp'],
  [4092, 'CRC'],
];
const digestPageFields: ReadonlyArray<[number, string]> = [
  [4080, 'index'],
  [4092, 'CRC'],
];
const replicaFields: ReadonlyArray<[number, string]> = [
  [0, 'magic'],
  [8, 'format version'],
  [16, 'volume id'],
  [32, 'regions'],
  [508, 'CRC'],
];
/** The offsets rot flips in one file, by its name (see the head of this file). */
function targetsOf(
  path: string,
  size: number,
  regionSize: number,
  regions: number,
  active: readonly number[],
): RotTarget[] {
  const name = posix.basename(path);
  const out: RotTarget[] = [];
  const add = (offset: number, what: string) => {
    if (offset >= 0 && offset < size) out.push({ path, offset, what: `${name} ${what}` });
  };
  switch (name) {
    case 'primary':
    case 'lock':
      return [];
    case 'meta':
      for (let slot = 0; slot < slotCount; slot++)
        for (const [offset, field] of metaFields) add(slot * slotSize + offset, `slot ${slot} ${field}`);
      return out;
    case 'map0':
    case 'map1':
      for (const region of active) {
        const page = Math.floor(region / regionsPerPage);
        add(
          size >= pageBytes ? page * pageBytes + ((region >> 3) % pageBitBytes) : region >> 3,
          `page bits of region ${region}`,
        );
      }
      if (size >= pageBytes) {
        for (const [offset, field] of mapPageFields) add(offset, `page 0 ${field}`);
      }
      return out;
    case 'cow': {
      const index = cowIndexSize(regions);
      for (const region of active) {
        for (const [offset, field] of entryFields) add(region * entrySize + offset, `entry ${region} ${field}`);
        add(index + region * regionSize, `slot ${region} first byte`);
        add(index + (region + 1) * regionSize - 1, `slot ${region} last byte`);
      }
      return out;
    }
    case 'replica':
      for (const [offset, field] of replicaFields) add(offset, `header ${field}`);
      return out;
    case 'image':
      for (const region of active) {
        add(region * regionSize, `region ${region} first byte`);
        add((region + 1) * regionSize - 1, `region ${region} last byte`);
      }
      return out;
    case 'digests':
      for (const region of active) {
        const page = Math.floor(region / entriesPerPage);
        add(page * digestPageBytes + (region % entriesPerPage) * 4, `entry of region ${region}`);
      }
      for (const [offset, field] of digestPageFields) add(offset, `page 0 ${field}`);
      return out;
    default:
      add(0, 'first byte');
      add(size - 1, 'last byte');
      return out;
  }
}

/** Every rot target of the volume's files (and its secondary's) as they are in `sut`. */
export function rotTargets(
  sut: ExplorationSut,
  regionSize: number,
  regions: number,
  active: readonly number[],
): RotTarget[] {
  const files = sut.files;
  const targets: RotTarget[] = [];
  for (const path of files.filePaths()) {
    if (!path.startsWith(`${volumeDir}/`)) continue;
    targets.push(...targetsOf(path, files.fileSize(path) ?? 0, regionSize, regions, active));
  }
  return targets;
}
