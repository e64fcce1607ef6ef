// cowmap read DIR --region R | --offset O --length L [--secondary]
// The raw bytes go to standard output (a label region prints its label, then NULs).
// The volume is opened read-only (OpenOptions.readOnly): read writes nothing, so it
// works on a read-only directory or file system. A byte range goes out piece by
// piece, never more than about `pieceBytes` in memory, whatever --length asks for.

import type { ReplicatedVolume, VolumeName } from '../../impl/replicatedVolume.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/read.ts';
import { integerMax, optionalIntegerOption } from '../integerOption.ts';
import { writeStdout } from '../stdout.ts';
import { UsageError } from '../usageError.ts';
import { volumeDirArgument, withVolume } from '../volume.ts';

/** Any offset, length or region: past the volume's end is E_RANGE (the volume's own check), not bad usage. */
const addressBounds = { min: 0, max: integerMax };
/** The most a piece of a byte range holds (rounded up to whole regions at its end). */
export const pieceBytes = 8 << 20;

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
  let position = offset;
  while (position < end) {
    // Pieces end on region boundaries, so each region is read once.
    const pieceEnd = Math.min(end, Math.ceil((position + pieceBytes) / volume.regionSize) * volume.regionSize);
    await writeStdout(volume.read(position, pieceEnd - position, volumeName));
    position = pieceEnd;
  }
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

  await withVolume(
    dir,
    async (volume) => {
      if (byRegion) await writeStdout(volume.readRegion(region!, volumeName));
      else await streamRange(volume, offset!, length!, volumeName);
    },
    { readOnly: true },
  );
  return 0;
});
