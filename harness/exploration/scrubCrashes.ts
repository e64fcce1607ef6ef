// Crashes inside scrub --repair after rot and a restart: at each of its durable
// calls, in process mode, power mode keeping nothing unsynced, and torn mode;
// then the volume is judged as after rot (rotVerdict.ts). When open refuses the
// rotted volume, `cowmap scrub DIR --repair` (scrubDir) is what a user runs, and
// it is crashed the same way.

import { isCowmapError } from '../../impl/errors.ts';
import type { ArmCrashOptions } from '../crash/powerChoices.ts';
import { dropEverything } from './choices.ts';
import type { Explorer } from './explorer.ts';
import type { FoundFailure } from './found.ts';
import { foundInWords } from './found.ts';
import type { PrefixNode } from './prefixes.ts';
import type { RotTarget } from './rotTargets.ts';
import { runToTheEnd } from './rotVerdict.ts';

type Scrub = (options: { repair: boolean }) => unknown;

/** The volume's scrub method, when the class has one. */
export function scrubOf(explorer: Explorer): Scrub | null {
  const method = (explorer.volumeClass.prototype as unknown as { scrub?: unknown }).scrub;
  return typeof method === 'function' ? (method as Scrub) : null;
}

const scrubCrashModes: ReadonlyArray<{ text: string; arm: Omit<ArmCrashOptions, 'afterIo'> }> = [
  { text: 'process', arm: { mode: 'process' } },
  { text: 'power, keeping nothing unsynced', arm: { mode: 'power', ...dropEverything } },
  { text: 'torn, seed 1', arm: { mode: 'power', seed: 1, torn: true } },
];

/**
 * Rot that open refuses: `cowmap scrub DIR --repair` (scrubDir) must repair what
 * a resend mends, and after it the cycles end with S = P (or open still says
 * E_CORRUPT: what no resend mends, the metadata's evidence rule). Crashed at each
 * of its durable calls, then run again uncrashed, then judged the same way.
 */
async function crashScrubDirs(
  explorer: Explorer,
  node: PrefixNode,
  target: RotTarget,
  base: string,
): Promise<FoundFailure | null> {
  const sut = explorer.sut;
  const stats = explorer.stats.inside.scrub;
  const label = `${base.replace('scrub --repair', 'scrub DIR --repair (open refused the volume)')}`;
  const prepare = async (): Promise<void> => {
    const unopened = explorer.restoreAt(node);
    if (unopened !== null) throw unopened.error;
    await sut.crash();
    sut.rot(target.path, target.offset);
  };
  let io: number;
  try {
    await prepare();
    const result = sut.scrubDirCrashing(null);
    if (result.crashed) throw new Error('exploration: scrubDir crashed with no crash armed');
    io = result.io;
    stats.states++;
    await runToTheEnd(explorer, true, `${label}, then cycles`, null);
  } catch (error) {
    if (isCowmapError(error) && error.code === 'E_CORRUPT') return null;
    return foundInWords(node, label, error);
  }
  return crashAtEachCall(explorer, node, io, {
    labelOf: (point) => `${label}, ${point}, then scrub --repair again`,
    crashAt: async (arm) => {
      await prepare();
      return sut.scrubDirCrashing(arm).crashed;
    },
    judge: async (crashed) => {
      if (sut.scrubDirCrashing(null).crashed) throw new Error('exploration: scrubDir crashed with no crash armed');
      await runToTheEnd(explorer, true, crashed, null);
    },
  });
}

/** After rot and a restart, scrub --repair crashed at each of its durable calls; then judged as rot is. */
export async function crashScrubs(
  explorer: Explorer,
  node: PrefixNode,
  target: RotTarget,
): Promise<FoundFailure | null> {
  const sut = explorer.sut;
  const base =
    `scrub --repair after a flipped byte at ${target.path} offset ${target.offset} (${target.what}) ` +
    `and a restart, after ${explorer.describePath(node.path)}`;
  const prepare = async (): Promise<boolean> => {
    const unopened = explorer.restoreAt(node);
    if (unopened !== null) throw unopened.error;
    await sut.crash();
    sut.rot(target.path, target.offset);
    return (await sut.recover()).ok;
  };
  let io: number;
  try {
    // Open refused the rot: scrub --repair of the closed volume (scrubDir) is what a user runs then.
    if (!(await prepare())) return crashScrubDirs(explorer, node, target, base);
    const result = sut.runCrashing(null, (volume) => (volume as unknown as { scrub: Scrub }).scrub({ repair: true }));
    io = result.crashed ? 0 : result.io;
  } catch (error) {
    if (isCowmapError(error) && error.code === 'E_CORRUPT') return null;
    return foundInWords(node, base, error);
  }
  return crashAtEachCall(explorer, node, io, {
    labelOf: (point) => `${base}, ${point}`,
    crashAt: async (arm) => {
      await prepare();
      return sut.runCrashing(arm, (volume) => (volume as unknown as { scrub: Scrub }).scrub({ repair: true })).crashed;
    },
    // scrub --repair may drop a rotted COW copy: that region is not point-in-time for this one cycle (docs/format.md, "Scrub").
    judge: async (label) => {
      await runToTheEnd(explorer, true, label, null);
    },
  });
}

/** How one scrub is crashed and judged, for crashAtEachCall. */
interface ScrubCrashing {
  readonly labelOf: (point: string) => string;
  /** Prepares the state, runs the scrub armed with `arm`; true if it crashed. */
  readonly crashAt: (arm: ArmCrashOptions) => Promise<boolean>;
  /** Judges the crashed state (recovery, the cycles, S = P); throws what it finds. */
  readonly judge: (label: string) => Promise<void>;
}

/**
 * The scrub crashed after each of its `io` durable calls in each mode; a crashed
 * state whose files and carried state equal one judged already is counted as a
 * duplicate, the others judged. E_CORRUPT is an allowed verdict (docs/format.md,
 * "Recovery"); anything else thrown is the failure found.
 */
async function crashAtEachCall(
  explorer: Explorer,
  node: PrefixNode,
  io: number,
  scrub: ScrubCrashing,
): Promise<FoundFailure | null> {
  const sut = explorer.sut;
  const stats = explorer.stats.inside.scrub;
  const judged = new Set<string>();
  for (let afterIo = 0; afterIo < io; afterIo++) {
    stats.points++;
    for (const how of scrubCrashModes) {
      stats.runs++;
      const label = scrub.labelOf(`crashed after io ${afterIo} of ${io} (${how.text})`);
      try {
        if (!(await scrub.crashAt({ ...how.arm, afterIo }))) continue;
        const key = `${sut.files.digest()}|${sut.carriedSignature()}`;
        if (judged.has(key)) {
          explorer.stats.duplicates++;
          continue;
        }
        judged.add(key);
        stats.states++;
        await scrub.judge(label);
      } catch (error) {
        if (isCowmapError(error) && error.code === 'E_CORRUPT') continue;
        return foundInWords(node, label, error);
      } finally {
        explorer.progress();
      }
    }
  }
  return null;
}
