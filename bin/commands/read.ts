// cowmap read DIR --region R | --offset O --length L [--secondary]
// The raw bytes go to standard output (a label region prints its label, then NULs).

import { integerOption, parseCommandLine, runCommand, UsageError, volumeDirArgument, withVolume, writeStdout } from '../../impl/commandLine.ts';
import type { Command } from '../main.ts';

const usage = 'read DIR --region R | --offset O --length L [--secondary]';

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
      const volumeName = values['secondary'] === true ? 'secondary' : 'primary';
      const byRegion = region !== undefined && offset === undefined && length === undefined;
      const byOffset = region === undefined && offset !== undefined && length !== undefined;
      if (!byRegion && !byOffset) throw new UsageError('give either --region, or --offset and --length');

      const bytes = await withVolume(dir, (volume) => (byRegion ? volume.readRegion(region!, volumeName) : volume.read(offset!, length!, volumeName)));
      await writeStdout(bytes);
      return 0;
    }),
};
