// cowmap write DIR --region R --label TEXT
// cowmap write DIR --offset O [--file F]     (the bytes of F, or of standard input)

import {
  integerOption,
  parseCommandLine,
  runCommand,
  stringOption,
  UsageError,
  volumeDirArgument,
  withVolume,
  writeStdout,
} from '../../impl/commandLine.ts';
import { CowmapError } from '../../impl/errors.ts';
import { readWholeFile } from '../../impl/nodeStorage.ts';
import type { Command } from '../main.ts';

const usage = 'write DIR --region R --label TEXT | --offset O [--file F]';

/** Reads standard input whole, refusing more than `lengthMax` bytes (the volume's size). */
async function readStdin(lengthMax: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of process.stdin) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    length += bytes.length;
    if (length > lengthMax) throw new CowmapError('E_RANGE', `write: standard input holds more than the volume's ${lengthMax} bytes`);
    chunks.push(bytes);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

export const command: Command = {
  summary: 'write a region or a byte range',
  run: (argv) =>
    runCommand(usage, async () => {
      const { values, positionals } = parseCommandLine(argv, {
        region: { type: 'string' },
        label: { type: 'string' },
        offset: { type: 'string' },
        file: { type: 'string' },
      });
      const dir = volumeDirArgument(positionals);
      const region = integerOption(values, 'region');
      const label = stringOption(values, 'label');
      const offset = integerOption(values, 'offset');
      const file = stringOption(values, 'file');
      const byRegion = region !== undefined && label !== undefined && offset === undefined && file === undefined;
      const byOffset = offset !== undefined && region === undefined && label === undefined;
      if (!byRegion && !byOffset) throw new UsageError('give either --region and --label, or --offset (with --file or standard input)');

      return withVolume(dir, async (volume) => {
        if (byRegion) {
          // A label region: the label's UTF-8 bytes, then zeros up to regionSize (docs/protocol.md section 7).
          const text = new TextEncoder().encode(label);
          if (text.length > volume.regionSize) {
            throw new CowmapError('E_SIZE', `write(region ${region}): the label is ${text.length} bytes, a region holds ${volume.regionSize}`);
          }
          const data = new Uint8Array(volume.regionSize);
          data.set(text);
          volume.writeRegion(region, data);
          await writeStdout(`wrote region ${region} (${data.length} bytes)\n`);
        } else {
          const bytes = file === undefined ? await readStdin(volume.sizeBytes) : readWholeFile(file);
          volume.write(offset!, bytes);
          await writeStdout(`wrote ${bytes.length} bytes at offset ${offset}\n`);
        }
        return 0;
      });
    }),
};
