// cowmap read DIR --region R | --offset O --length L [--secondary | --consistent]
// The raw bytes go to standard output (a label region prints its label, then NULs).
// The volume is opened read-only (OpenOptions.readOnly): read writes nothing, so it
// works on a read-only directory or file system. A byte range goes out piece by
// piece, never more than about `pieceBytes` in memory, whatever --length asks for.
// --consistent reads the consistent image (docs/receive.md): of a receiver directory
// (readConsistent.ts), or of a volume whose secondary is `consistent:`.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileNames } from '../../impl/layout.ts';
import type { ReplicatedVolume, VolumeName } from '../../impl/replicatedVolume.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/read.ts';
import { integerMax, optionalIntegerOption } from '../integerOption.ts';
import { writeStdout } from '../stdout.ts';
import { UsageError } from '../usageError.ts';
import { volumeDirArgument, withVolume } from '../volume.ts';
import { readReceiverConsistent } from './readConsistent.ts';
import { streamPieces } from './readPieces.ts';

/** Any offset, length or region: past the volume's end is E_RANGE (the volume's own check), not bad usage. */
const addressBounds = { min: 0, max: integerMax };

/** Writes `length` bytes at `offset` of one image to standard output, a piece at a time. */
async function streamRange(
  volume: ReplicatedVolume,
  offset: number,
  length: number,
  volumeName: VolumeName,
): Promise<void> {
  const end = offset + length;
  if (!Number.isSafeInteger(end) || end > volume.sizeBytes) {
    // Out of range: the volume's own check refuses it (E_RANGE) before it allocates anything.
    volume.read(offset, length, volumeName);
  }
  await streamPieces(offset, length, volume.regionSize, (at, bytes) => volume.read(at, bytes, volumeName));
}

/** The consistent image of a volume's `consistent:` secondary: by whole regions (volume.readConsistent). */
async function streamConsistentRange(volume: ReplicatedVolume, offset: number, length: number): Promise<void> {
  const end = offset + length;
  // Out of range: the volume's own check refuses it (E_RANGE).
  if (!Number.isSafeInteger(end) || end > volume.sizeBytes) volume.read(offset, length);
  const size = volume.regionSize;
  await streamPieces(offset, length, size, (at, bytes) => {
    const piece = new Uint8Array(bytes);
    for (let region = Math.floor(at / size); region * size < at + bytes; region++) {
      const data = volume.readConsistent(region);
      const from = Math.max(at, region * size);
      const to = Math.min(at + bytes, (region + 1) * size);
      piece.set(data.subarray(from - region * size, to - region * size), from - at);
    }
    return piece;
  });
}

export const command = defineCommand(description, async ({ values, positionals }) => {
  const dir = volumeDirArgument(positionals);
  const region = optionalIntegerOption('region', values.region, addressBounds);
  const offset = optionalIntegerOption('offset', values.offset, addressBounds);
  const length = optionalIntegerOption('length', values.length, addressBounds);
  const volumeName: VolumeName = values.secondary === true ? 'secondary' : 'primary';
  const byRegion = region !== undefined && offset === undefined && length === undefined;
  const byOffset = region === undefined && offset !== undefined && length !== undefined;
  if (!byRegion && !byOffset) throw new UsageError('give either --region, or --offset and --length');
  const consistent = values.consistent === true;
  if (consistent && values.secondary === true) throw new UsageError('give --secondary or --consistent, not both');
  const range = byRegion ? { region: region! } : { offset: offset!, length: length! };
  // A volume directory has its metadata file; anything else is taken for a receiver's.
  if (consistent && !existsSync(join(dir, fileNames.metadata))) {
    await readReceiverConsistent(dir, range);
    return 0;
  }
  await withVolume(
    dir,
    async (volume) => {
      if (consistent) {
        if (byRegion) await writeStdout(volume.readConsistent(region!));
        else await streamConsistentRange(volume, offset!, length!);
      } else if (byRegion) await writeStdout(volume.readRegion(region!, volumeName));
      else await streamRange(volume, offset!, length!, volumeName);
    },
    { readOnly: true },
  );
  return 0;
});
