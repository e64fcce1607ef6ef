// cowmap write DIR --region R --label TEXT
// cowmap write DIR --offset O [--file F]     (the bytes of F, or of standard input)
//
// --file F that does not exist is E_NOT_FOUND, a directory E_BAD_REQUEST, both
// before the volume is opened; any other failure to read F is E_IO with the
// operation, the errno and F. The bytes go to the volume a piece at a time (about
// `pieceBytes`, ending on a region boundary), so a large input never sits in
// memory whole. A regular file longer than the room from O to the end of the
// volume is refused (E_RANGE) before anything is written; a longer standard input
// (or a pipe or device given as F) is refused when its excess arrives, and the
// message says how many bytes were written before that (a write of several
// regions is not atomic anyway: docs/protocol.md section 5).

import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { CowmapError } from '../../impl/errors.ts';
import type { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/write.ts';
import { integerMax, optionalIntegerOption } from '../integerOption.ts';
import { writeStdout } from '../stdout.ts';
import { UsageError } from '../usageError.ts';
import { volumeDirArgument, withVolume } from '../volume.ts';

/** Any offset or region: past the volume's end is E_RANGE (the volume's own check), not bad usage. */
const addressBounds = { min: 0, max: integerMax };
/** About how much of the input is held before it goes to the volume. */
export const pieceBytes = 8 << 20;

/** Opens --file F for reading, or says in a coded error why it cannot be the input. */
function openInputFile(path: string): number {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new CowmapError('E_NOT_FOUND', `write: --file ${path}: no such file`, { cause: error });
    throw error;
  }
  if (isDirectory) throw new CowmapError('E_BAD_REQUEST', `write: --file ${path} is a directory, not a file`);
  return openSync(path, 'r');
}

/** The input a chunk at a time: the file descriptor `fd`, or standard input when null. */
async function* inputChunks(fd: number | null): AsyncGenerator<Uint8Array> {
  if (fd === null) {
    for await (const chunk of process.stdin) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    return;
  }
  for (;;) {
    const buffer = Buffer.alloc(1 << 20);
    const count = readSync(fd, buffer, 0, buffer.length, null);
    if (count === 0) return;
    yield buffer.subarray(0, count);
  }
}

/** Writes the whole input at `offset`, piece by piece; returns the number of bytes written. */
async function writeInput(
  volume: ReplicatedVolume,
  offset: number,
  chunks: AsyncIterable<Uint8Array>,
): Promise<number> {
  const room = volume.sizeBytes - offset;
  let pending: Uint8Array[] = [];
  let pendingLength = 0;
  let written = 0;
  const flush = (length: number): void => {
    const joined = Buffer.concat(pending, pendingLength);
    volume.write(offset + written, joined.subarray(0, length));
    written += length;
    pending = length < joined.length ? [joined.subarray(length)] : [];
    pendingLength = joined.length - length;
  };
  for await (const chunk of chunks) {
    pending.push(chunk);
    pendingLength += chunk.length;
    if (written + pendingLength > room) {
      throw new CowmapError(
        'E_RANGE',
        `write(offset ${offset}) while ${volume.phase}: the input holds more than the ${Math.max(room, 0)} bytes ` +
          `from offset ${offset} to the end of the volume of ${volume.sizeBytes} bytes` +
          (written > 0 ? `; its first ${written} bytes were written` : '; nothing was written'),
      );
    }
    if (pendingLength >= pieceBytes) {
      // Up to a region boundary, so that no region is merged twice.
      const end = Math.floor((offset + written + pendingLength) / volume.regionSize) * volume.regionSize;
      if (end > offset + written) flush(end - offset - written);
    }
  }
  // The last piece, or a zero-length write (which still checks the offset).
  if (pendingLength > 0 || written === 0) flush(pendingLength);
  return written;
}

export const command = defineCommand(description, async ({ values, positionals }) => {
  const dir = volumeDirArgument(positionals);
  const region = optionalIntegerOption('region', values.region, addressBounds);
  const label = values.label;
  const offset = optionalIntegerOption('offset', values.offset, addressBounds);
  const file = values.file;
  const byRegion = region !== undefined && label !== undefined && offset === undefined && file === undefined;
  const byOffset = offset !== undefined && region === undefined && label === undefined;
  if (!byRegion && !byOffset)
    throw new UsageError('give either --region and --label, or --offset (with --file or standard input)');

  const fd = file === undefined ? null : openInputFile(file);
  try {
    return await withVolume(dir, async (volume) => {
      if (byRegion) {
        // A label region: the label's UTF-8 bytes, then zeros up to regionSize (docs/protocol.md section 7).
        const text = new TextEncoder().encode(label);
        if (text.length > volume.regionSize) {
          throw new CowmapError(
            'E_SIZE',
            `write(region ${region}): the label is ${text.length} bytes, a region holds ${volume.regionSize}`,
          );
        }
        const data = new Uint8Array(volume.regionSize);
        data.set(text);
        volume.writeRegion(region, data);
        await writeStdout(`wrote region ${region} (${data.length} bytes)\n`);
        return 0;
      }
      if (fd !== null) {
        const stats = fstatSync(fd);
        if (stats.isFile() && offset! + stats.size > volume.sizeBytes) {
          throw new CowmapError(
            'E_RANGE',
            `write(offset ${offset}, length ${stats.size}) while ${volume.phase}: bytes ${offset}..${offset! + stats.size} ` +
              `of --file ${file} are outside the volume of ${volume.sizeBytes} bytes; nothing was written`,
          );
        }
      }
      const written = await writeInput(volume, offset!, inputChunks(fd));
      await writeStdout(`wrote ${written} bytes at offset ${offset}\n`);
      return 0;
    });
  } finally {
    if (fd !== null) closeSync(fd);
  }
});
