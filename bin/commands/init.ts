// cowmap init DIR --regions N --region-size BYTES [--secondary DIR2]
// The geometry is checked (E_SIZE, impl/geometry.ts) before anything is created.

import {
  parseCommandLine,
  requiredIntegerOption,
  runCommand,
  stringOption,
  volumeDirArgument,
  writeStdout,
} from '../../impl/commandLine.ts';
import { checkGeometry } from '../../impl/geometry.ts';
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
      // create checks it too; checking here keeps even a directory from being made.
      checkGeometry({ regions, regionSize });
      const volume = ReplicatedVolume.create(
        new NodeStorage(),
        dir,
        { regions, regionSize },
        secondaryDir === undefined ? {} : { secondaryDir },
      );
      volume.close();
      await writeStdout(
        `created ${dir}: ${regions} regions of ${regionSize} bytes (${regions * regionSize} bytes), secondary in ${secondaryDir ?? `${dir}/secondary`}\n`,
      );
      return 0;
    }),
};
