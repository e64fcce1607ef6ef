// cowmap status DIR: the phase, the maps and the counts. The volume is opened
// read-only (OpenOptions.readOnly): recovery runs in memory only and nothing is
// written, so status works on a read-only directory or file system and on a full one.

import { defineCommand } from '../command.ts';
import { description } from '../descriptions/status.ts';
import { writeStdout } from '../stdout.ts';
import { volumeDirArgument, withVolume } from '../volume.ts';

/** Bits of a map shown in full; larger volumes show this many, then counts. */
const bitsShownMax = 64;

function bitString(regions: number, set: number[]): string {
  const shown = Math.min(regions, bitsShownMax);
  const bits = new Array<string>(shown).fill('0');
  for (const region of set) if (region < shown) bits[region] = '1';
  return bits.join('') + (regions > shown ? `... (first ${shown} of ${regions})` : '');
}

export const command = defineCommand(description, ({ positionals }) => {
  const dir = volumeDirArgument(positionals);
  return withVolume(
    dir,
    async (volume) => {
      const current = volume.currentRegions();
      const next = volume.nextRegions();
      const preserved = volume.preservedRegions();
      const lines = [
        `volume     ${dir}`,
        `geometry   ${volume.regions} regions x ${volume.regionSize} bytes (${volume.sizeBytes} bytes)`,
        `phase      ${volume.phase}${volume.phase === 'replicating' ? ` (cycle ${volume.cycle}, resumed: every current region must be sent again)` : ''}`,
        `cycles     ${volume.cycle} started`,
        `current    ${bitString(volume.regions, current)}  ${current.length} dirty (C)`,
        `next       ${bitString(volume.regions, next)}  ${next.length} dirty (X)`,
        `cow        ${bitString(volume.regions, preserved)}  ${preserved.length} preserved (W)`,
      ];
      await writeStdout(`${lines.join('\n')}\n`);
      return 0;
    },
    { readOnly: true },
  );
});
