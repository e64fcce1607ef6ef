// cowmap init DIR --regions N --region-size BYTES [--secondary DIR2 [--consistent] | --secondary NBD-URL]
// The geometry is checked (E_SIZE, impl/geometry.ts) before anything is created.
// An NBD secondary (docs/remote.md) is claimed and zeroed by init itself.

import { checkGeometry } from '../../impl/geometry.ts';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import { exportSizeOf } from '../../impl/remote/controlBlock.ts';
import { isNbdUrl } from '../../impl/nbd/client/nbdUrl.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import type { CreateOptions } from '../../impl/volumeParts.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/init.ts';
import { integerMax, integerOption } from '../integerOption.ts';
import { writeStdout } from '../stdout.ts';
import { UsageError } from '../usageError.ts';
import { requiredOption, volumeDirArgument } from '../volume.ts';

// Any count the file system could take: the geometry's own limits are E_SIZE (checkGeometry), not bad usage.
const geometryBounds = { min: 0, max: integerMax };
/** How long init tries to reach an NBD secondary: it is there to be claimed, or init fails. */
const initRetryBudgetMs = 10_000;

/** The create options of --secondary and --consistent, and how the result line names the secondary. */
function secondaryChoice(dir: string, secondary: string | undefined, consistent: boolean): [CreateOptions, string] {
  if (secondary !== undefined && isNbdUrl(secondary)) {
    if (consistent)
      throw new UsageError('--consistent is for a directory secondary; an NBD export is updated in place');
    return [{ secondaryUrl: secondary, link: { retryBudgetMs: initRetryBudgetMs } }, `secondary at ${secondary}`];
  }
  const where = secondary ?? `${dir}/secondary`;
  if (consistent) return [{ consistentSecondaryDir: where }, `consistent secondary in ${where}`];
  return [secondary === undefined ? {} : { secondaryDir: secondary }, `secondary in ${where}`];
}

export const command = defineCommand(description, async ({ values, positionals }) => {
  const dir = volumeDirArgument(positionals);
  const regions = integerOption('regions', requiredOption('regions', values.regions), geometryBounds);
  const regionSize = integerOption('region-size', requiredOption('region-size', values['region-size']), geometryBounds);
  const [options, secondaryText] = secondaryChoice(dir, values.secondary, values.consistent === true);
  // create checks it too; checking here keeps even a directory from being made.
  checkGeometry({ regions, regionSize });
  const volume = ReplicatedVolume.create(new NodeStorage(), dir, { regions, regionSize }, options);
  volume.close();
  const exportNote =
    options.secondaryUrl === undefined ? '' : ` (an export of ${exportSizeOf({ regions, regionSize })} bytes)`;
  await writeStdout(
    `created ${dir}: ${regions} regions of ${regionSize} bytes (${regions * regionSize} bytes), ${secondaryText}${exportNote}\n`,
  );
  return 0;
});
