// cowmap cycle DIR: one replication cycle. Swaps (or, when the volume opens in the
// middle of a cycle that a crash interrupted, resumes it), sends every region of
// the current map, completes. A progress bar goes to stderr when it is a terminal.

import {
  parseCommandLine,
  runCommand,
  summarizeRegions,
  volumeDirArgument,
  withVolume,
  writeStdout,
} from '../../impl/commandLine.ts';
import { runCycle } from '../../impl/runCycle.ts';
import type { Command } from '../main.ts';

const usage = 'cycle DIR';
const progressWidth = 40;
/** Progress redraws per cycle at most, so that a large cycle does not flood the terminal. */
const progressDrawsMax = 200;

function drawProgress(sentCount: number, totalCount: number): void {
  const filled = totalCount === 0 ? progressWidth : Math.round((sentCount / totalCount) * progressWidth);
  process.stderr.write(
    `\r[${'#'.repeat(filled)}${'.'.repeat(progressWidth - filled)}] ${sentCount}/${totalCount} regions`,
  );
}

export const command: Command = {
  summary: 'run (or resume) one replication cycle',
  run: (argv) =>
    runCommand(usage, async () => {
      const { positionals } = parseCommandLine(argv, {});
      const dir = volumeDirArgument(positionals);
      return withVolume(dir, async (volume) => {
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
      });
    }),
};
