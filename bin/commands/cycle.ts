// cowmap cycle DIR: one replication cycle. Swaps (or, when the volume opens in the
// middle of a cycle that a crash interrupted, resumes it), sends every region of
// the current map, completes. A progress bar goes to stderr when it is a terminal.

import { parseCommandLine, runCommand, summarizeRegions, volumeDirArgument, withVolume, writeStdout } from '../../impl/commandLine.ts';
import type { Command } from '../main.ts';

const usage = 'cycle DIR';
const progressWidth = 40;
/** Progress redraws per cycle at most, so that a large cycle does not flood the terminal. */
const progressDrawsMax = 200;

function drawProgress(sentCount: number, totalCount: number): void {
  const filled = totalCount === 0 ? progressWidth : Math.round((sentCount / totalCount) * progressWidth);
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(progressWidth - filled)}] ${sentCount}/${totalCount} regions`);
}

export const command: Command = {
  summary: 'run (or resume) one replication cycle',
  run: (argv) =>
    runCommand(usage, async () => {
      const { positionals } = parseCommandLine(argv, {});
      const dir = volumeDirArgument(positionals);
      return withVolume(dir, async (volume) => {
        const resumed = volume.phase === 'replicating';
        if (!resumed) volume.startCycle();
        const regions = volume.currentRegions();
        const progress = process.stderr.isTTY === true && regions.length > 0;
        const drawEvery = Math.max(1, Math.ceil(regions.length / progressDrawsMax));
        for (let index = 0; index < regions.length; index++) {
          volume.transfer(regions[index]!);
          if (progress && ((index + 1) % drawEvery === 0 || index + 1 === regions.length)) drawProgress(index + 1, regions.length);
        }
        if (progress) process.stderr.write('\n');
        volume.completeCycle();
        const bytes = regions.length * volume.regionSize;
        await writeStdout(
          `${resumed ? 'resumed' : 'ran'} cycle ${volume.cycle}: sent ${regions.length} region(s), ${bytes} bytes\n` +
            `regions: ${summarizeRegions(regions)}\n`,
        );
        return 0;
      });
    }),
};
