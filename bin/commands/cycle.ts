// cowmap cycle DIR [--retry-seconds S]: one replication cycle. Swaps (or, when the
// volume opens in the middle of a cycle that a crash interrupted, resumes it), sends
// every region of the current map, completes. A progress bar goes to stderr when it
// is a terminal. An NBD secondary's faults are retried for --retry-seconds per step
// (docs/remote.md); past that, E_IO with the cycle left running.

import { NodeStorage } from '../../impl/nodeStorage.ts';
import { linkOptionsDefault } from '../../impl/remote/linkOptions.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { runCycle } from '../../impl/runCycle.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/cycle.ts';
import { optionalIntegerOption } from '../integerOption.ts';
import { writeStdout } from '../stdout.ts';
import { volumeDirArgument } from '../volume.ts';

/** --retry-seconds: up to a day. */
const retrySecondsBounds = { min: 0, max: 86_400 };

const progressWidth = 40;
/** Progress redraws per cycle at most, so that a large cycle does not flood the terminal. */
const progressDrawsMax = 200;

function drawProgress(sentCount: number, totalCount: number): void {
  const filled = totalCount === 0 ? progressWidth : Math.round((sentCount / totalCount) * progressWidth);
  process.stderr.write(
    `\r[${'#'.repeat(filled)}${'.'.repeat(progressWidth - filled)}] ${sentCount}/${totalCount} regions`,
  );
}

/** A list of regions for people: the first `shownMax`, then a count of the rest. */
export function summarizeRegions(regions: readonly number[], shownMax = 64): string {
  if (regions.length === 0) return '(none)';
  const shown = regions.slice(0, shownMax).join(' ');
  return regions.length > shownMax ? `${shown} ... (${regions.length - shownMax} more)` : shown;
}

export const command = defineCommand(description, async ({ values, positionals }) => {
  const dir = volumeDirArgument(positionals);
  const retrySeconds = optionalIntegerOption('retry-seconds', values['retry-seconds'], retrySecondsBounds);
  const retryBudgetMs = retrySeconds === undefined ? linkOptionsDefault.retryBudgetMs : retrySeconds * 1000;
  const volume = ReplicatedVolume.open(new NodeStorage(), dir, { link: { retryBudgetMs } });
  try {
    const progress = process.stderr.isTTY === true;
    let drawnStep = -1;
    const { cycle, resumed, regions } = runCycle(volume, (sentCount, totalCount) => {
      const step = Math.floor((sentCount * progressDrawsMax) / totalCount);
      if (progress && step !== drawnStep) {
        drawnStep = step;
        drawProgress(sentCount, totalCount);
      }
    });
    if (progress && regions.length > 0) process.stderr.write('\n');
    const bytes = regions.length * volume.regionSize;
    await writeStdout(
      `${resumed ? 'resumed' : 'ran'} cycle ${cycle}: sent ${regions.length} region(s), ${bytes} bytes\n` +
        `regions: ${summarizeRegions(regions)}\n`,
    );
    return 0;
  } finally {
    volume.close();
  }
});
