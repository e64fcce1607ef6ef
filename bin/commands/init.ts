// cowmap init DIR --regions N --region-size BYTES [--secondary DIR2]
// The geometry is checked (E_SIZE, impl/geometry.ts) before anything is created.

import { checkGeometry } from '../../impl/geometry.ts';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/init.ts';
import { integerMax, integerOption } from '../integerOption.ts';
import { writeStdout } from '../stdout.ts';
import { requiredOption, volumeDirArgument } from '../volume.ts';

// Any count the file system could take: the geometry's own limits are E_SIZE (checkGeometry), not bad usage.
const geometryBounds = { min: 0, max: integerMax };

export const command = defineCommand(description, async ({ values, positionals }) => {
  const dir = volumeDirArgument(positionals);
  const regions = integerOption('regions', requiredOption('regions', values.regions), geometryBounds);
  const regionSize = integerOption('region-size', requiredOption('region-size', values['region-size']), geometryBounds);
  const secondaryDir = values.secondary;
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
});
