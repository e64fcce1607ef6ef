// cowmap read DIR --region R | --offset O --length L [--secondary]
// The raw bytes go to standard output (a label region prints its label, then NULs).
// The volume is opened read-only (OpenOptions.readOnly): read writes nothing, so it
// works on a read-only directory or file system. A byte range goes out piece by
// piece, never more than about `pieceBytes` in memory, whatever --length asks for.

import {
  integerOption,
  parseCommandLine,
  runCommand,
  UsageError,
  volumeDirArgument,
  withVolume,
  writeStdout,
} from '../../impl/commandLine.ts';
import type { ReplicatedVolume, VolumeName } from '../../impl/replicatedVolume.ts';
import type { Command } from '../main.ts';

const usage = 'read DIR --region R | --offset O --length L [--secondary]';
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

export const command: Command = {
  summary: 'read a region or a byte range',
  run: (argv) =>
    runCommand(usage, async () => {
      const { values, positionals } = parseCommandLine(argv, {
        region: { type: 'string' },
        offset: { type: 'string' },
        length: { type: 'string' },
        secondary: { type: 'boolean' },
      });
      const dir = volumeDirArgument(positionals);
      const region = integerOption(values, 'region');
      const offset = integerOption(values, 'offset');
      const length = integerOption(values, 'length');
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
    }),
};
