// cowmap init DIR --regions N --region-size BYTES [--secondary DIR2]

import { parseCommandLine, requiredIntegerOption, runCommand, stringOption, volumeDirArgument, writeStdout } from '../../impl/commandLine.ts';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import type { Command } from '../main.ts';

const usage = 'init DIR --regions N --region-size BYTES [--secondary DIR2]';

export const command: Command = {
  summary: 'create a volume',
  run: (argv) =>
    runCommand(usage, async () => {
      const { values, positionals } = parseCommandLine(argv, {
        regions: { type: 'string' },
        'region-size': { type: 'string' },
        secondary: { type: 'string' },
      });
      const dir = volumeDirArgument(positionals);
      const regions = requiredIntegerOption(values, 'regions');
      const regionSize = requiredIntegerOption(values, 'region-size');
      const secondaryDir = stringOption(values, 'secondary');
      const volume = ReplicatedVolume.create(new NodeStorage(), dir, { regions, regionSize }, secondaryDir === undefined ? {} : { secondaryDir });
      volume.close();
      await writeStdout(`created ${dir}: ${regions} regions of ${regionSize} bytes (${regions * regionSize} bytes), secondary in ${secondaryDir ?? `${dir}/secondary`}\n`);
      return 0;
    }),
};
