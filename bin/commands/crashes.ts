// cowmap crashes [--quick] [--length L] [--regions N] [--active R,R,...] [--values V]
//                [--modes process,power,torn] [--subset-bits B] [--samples S]
//                [--region-size BYTES] [--mutant NAME] [--out-dir DIR] [--no-dedupe]
//                [--no-create] [--no-recovery] [--no-rot] [--no-byte-tears]
//                [--recovery-paths P] [--rot-states K] [--quiet]
// Bounded exhaustive crash exploration (harness/exploration/explorer.ts): every
// operation sequence up to length L, each accepted operation crashed at every
// durable I/O call, in process, power (every subset of the unsynced writes and
// names up to 2^B, else S seeded samples) and torn mode (sector-wise, and the
// volume's own records torn inside a sector); crashes inside create and inside
// recovery (a second crash inside it too), rot (a flipped byte in each synced
// structure) and crashes inside scrub --repair. Each state recovered and checked.
//
// With no geometry option it runs three explorations: a small geometry searched
// deep (2 regions of 1 KiB, L = 4, two values), and a wide one (17 regions of
// 512 bytes: three map bytes and three sectors of COW entries, two values written
// to regions 0, 9 and 16, L = 4); each crashes up to 64 recovery paths and flips
// bytes at 24 kinds of prefix states. Then a third, 1030 regions with writes to 0
// and 1025 (two read chunks of the COW index at recovery, map byte 128), L = 3.
// About a minute on an idle 2-core machine.
// --quick runs the first two shallow, in seconds (for make test).
// Then (not with a geometry option or a mutant) the receiver's store: 40 seeded histories
// of cycles (1 with --quick) crashed after every durable call in each of the --modes and
// by a kill followed by a power loss inside recovery (harness/crash/receiverCrashes.ts),
// a line of counts per mode.
// Prints the summary of each and the crash states per kind with the time. Exit
// status: 0 every crash state passes, 1 a failure (saved and printed), 2 bad usage.

import { exploreCrashes } from '../../harness/exploration/explorer.ts';
import {
  explorationBounds,
  explorationDefaults,
  explorationOptionsProblem,
} from '../../harness/exploration/options.ts';
import { explorationModes } from '../../harness/exploration/choices.ts';
import { receiverCrashesReport, receiverFaults } from '../../harness/crash/receiverCrashes.ts';
import {
  formatFailureReport,
  formatSummary,
  statesPerKind,
  statesPerSecond,
} from '../../harness/exploration/report.ts';
import type { ExplorationMode } from '../../harness/exploration/choices.ts';
import type { ExplorationOptions } from '../../harness/exploration/options.ts';
import type { ExplorationStats } from '../../harness/exploration/stats.ts';
import type { VolumeClass } from '../../harness/types.ts';
import type { Values } from '../command.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/crashes.ts';
import { reportFailure } from '../failure.ts';
import { integerOption, optionalIntegerOption } from '../integerOption.ts';
import { mutantOption } from '../mutantOption.ts';
import { parseCommandArgs } from '../parseCommand.ts';
import { UsageError } from '../usageError.ts';

export interface CrashesOutput {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Show progress on err (only worth it on a terminal). */
  readonly progress: boolean;
}

type Shape = Pick<
  ExplorationOptions,
  | 'length'
  | 'regions'
  | 'values'
  | 'regionSize'
  | 'activeRegions'
  | 'recoveryPathsMax'
  | 'rotStatesMax'
  | 'scrubStatesMax'
>;

/** The explorations run with no geometry option: deep and small, then wide. */
export const defaultPlan: readonly Shape[] = [
  {
    length: explorationDefaults.length,
    regions: explorationDefaults.regions,
    values: explorationDefaults.values,
    regionSize: explorationDefaults.regionSize,
    recoveryPathsMax: 64,
    rotStatesMax: 24,
    scrubStatesMax: 4,
  },
  {
    length: 4,
    regions: 17,
    values: 2,
    regionSize: 512,
    activeRegions: [0, 9, 16],
    recoveryPathsMax: 64,
    rotStatesMax: 24,
    scrubStatesMax: 4,
  },
  // Past 1024 regions recovery reads the COW index in more than one chunk (impl/cowStore.ts, entriesPerReadMax).
  {
    length: 3,
    regions: 1030,
    values: 1,
    regionSize: 512,
    activeRegions: [0, 1025],
    recoveryPathsMax: 16,
    rotStatesMax: 2,
    scrubStatesMax: 1,
  },
];

/** --quick: the same two, shallow, for the test suite (a few seconds). */
export const quickPlan: readonly Shape[] = [
  { length: 2, regions: 2, values: 1, regionSize: 1024, recoveryPathsMax: 2, rotStatesMax: 1, scrubStatesMax: 1 },
  {
    length: 2,
    regions: 17,
    values: 1,
    regionSize: 512,
    activeRegions: [0, 16],
    recoveryPathsMax: 1,
    rotStatesMax: 1,
    scrubStatesMax: 0,
  },
];

type CrashesValues = Values<typeof description.options>;

/** The receiver's histories start here (history i has seed + i): the same crash points on every run. */
const receiverSeed = 20261130;

/** The bounds are the exploration's own (harness/exploration/options.ts): one table, checked once more there. */
const bounds = explorationBounds;
const activeRegionsMax = bounds.activeRegionCount.max;

function parseModes(text: string): ExplorationMode[] {
  const modes = text
    .split(',')
    .map((mode) => mode.trim())
    .filter((mode) => mode !== '');
  if (modes.length === 0 || !modes.every((mode) => (explorationModes as readonly string[]).includes(mode)))
    throw new UsageError(`--modes must be a comma-separated list of ${explorationModes.join(', ')}, got '${text}'`);
  return modes as ExplorationMode[];
}

function parseRegionList(text: string, regions: number): number[] {
  const list = text.split(',').map((part) => part.trim());
  if (list.length === 0 || list.length > activeRegionsMax)
    throw new UsageError(`--active takes 1 to ${activeRegionsMax} regions, got '${text}'`);
  const out: number[] = [];
  for (const part of list) {
    const region = integerOption('active', part, { min: 0, max: regions - 1 });
    if (!out.includes(region)) out.push(region);
  }
  return out;
}

/** The one exploration that geometry options ask for (the rest from the small default). */
function customShape(values: CrashesValues): Shape {
  const length = integerOption('length', values.length ?? String(explorationDefaults.length), bounds.length);
  const regions = integerOption('regions', values.regions ?? String(explorationDefaults.regions), bounds.regions);
  const valueCount = integerOption('values', values.values ?? String(explorationDefaults.values), bounds.values);
  const regionSize = integerOption(
    'region-size',
    values['region-size'] ?? String(explorationDefaults.regionSize),
    bounds.regionSize,
  );
  if (values.active === undefined && regions > activeRegionsMax)
    throw new UsageError(`--regions ${regions} needs --active (at most ${activeRegionsMax} regions written)`);
  const activeRegions = values.active === undefined ? undefined : parseRegionList(values.active, regions);
  return { length, regions, values: valueCount, regionSize, activeRegions };
}

function progressLine(stats: ExplorationStats): string {
  const count = (value: number): string => value.toLocaleString('en-US');
  return (
    `\r  ${count(stats.prefixes)} prefixes, ${count(stats.crashPoints)} crash points, ` +
    `${count(stats.crashStates)} crash states, ${statesPerSecond(stats)} states/s`
  );
}

/** The crash states per kind over every exploration run, with the time: the last lines of the output. */
export function formatTotals(all: readonly ExplorationStats[]): string {
  const totals = new Map<string, number>();
  for (const stats of all)
    for (const { kind, states } of statesPerKind(stats)) totals.set(kind, (totals.get(kind) ?? 0) + states);
  const seconds = all.reduce((sum, stats) => sum + stats.seconds, 0);
  const kinds = [...totals].map(([kind, states]) => `${kind} ${states.toLocaleString('en-US')}`).join(', ');
  return `crash states per kind: ${kinds}; ${[...totals.values()].reduce((a, b) => a + b, 0).toLocaleString('en-US')} in all, in ${seconds.toFixed(1)} s`;
}

/** The command, with its output streams as parameters (for tests): parses `argv`, reports bad usage, runs. */
export async function crashesMain(argv: string[], output: CrashesOutput): Promise<number> {
  try {
    const { values } = parseCommandArgs(description, argv, () => undefined);
    return await crashes(values as CrashesValues, output);
  } catch (error) {
    if (error instanceof UsageError) return reportFailure(error, description.name, description.usage);
    throw error;
  }
}

async function crashes(values: CrashesValues, output: CrashesOutput): Promise<number> {
  const subsetBits = integerOption(
    'subset-bits',
    values['subset-bits'] ?? String(explorationDefaults.subsetBitsMax),
    bounds.subsetBitsMax,
  );
  const samples = integerOption('samples', values.samples ?? String(explorationDefaults.samplesMax), bounds.samplesMax);
  const modes = parseModes(values.modes ?? explorationModes.join(','));
  // One exploration when any geometry option is given, else the plan.
  const custom = [values.length, values.regions, values.active, values.values, values['region-size']].some(
    (value) => value !== undefined,
  );
  const plan: readonly Shape[] = custom ? [customShape(values)] : values.quick ? quickPlan : defaultPlan;
  const recoveryPaths = optionalIntegerOption('recovery-paths', values['recovery-paths'], bounds.recoveryPathsMax);
  const rotStates = optionalIntegerOption('rot-states', values['rot-states'], bounds.rotStatesMax);
  const volumeClass: VolumeClass | undefined =
    values.mutant === undefined ? undefined : mutantOption(values.mutant).volumeClass;

  const progress = output.progress && !values.quiet;
  const all: ExplorationStats[] = [];
  for (const shape of plan) {
    const options: ExplorationOptions = {
      ...shape,
      modes,
      subsetBitsMax: subsetBits,
      samplesMax: samples,
      volumeClass,
      volumeName: values.mutant === undefined ? 'the reference implementation' : `mutant ${values.mutant}`,
      failuresDir: values['out-dir'] ?? explorationDefaults.failuresDir,
      dedupePrefixes: !values['no-dedupe'],
      createCrashes: !values['no-create'],
      recoveryPathsMax: values['no-recovery'] ? 0 : (recoveryPaths ?? shape.recoveryPathsMax),
      rot: !values['no-rot'],
      rotStatesMax: rotStates ?? shape.rotStatesMax,
      byteTears: !values['no-byte-tears'],
      onProgress: progress ? (stats) => output.err(progressLine(stats)) : undefined,
    };
    // What the option parsing above does not see (a region size that is no multiple of the sector, ...).
    const problem = explorationOptionsProblem(options);
    if (problem !== null) throw new UsageError(problem);
    const result = await exploreCrashes(options);
    all.push(result.stats);
    if (progress) output.err('\r\x1b[K');
    output.out(`${formatSummary(result.stats, options)}\n`);
    if (result.failure !== null) {
      output.out(`${formatFailureReport(result.failure)}\n`);
      if (result.failure.file !== null && result.failure.notReplayable === undefined) {
        output.out(
          `replay it: cowmap replay${values.mutant === undefined ? '' : ` --mutant ${values.mutant}`} ${result.failure.file}\n`,
        );
      }
      output.out(`${formatTotals(all)}\n`);
      return 1;
    }
  }
  // The receiver's store (harness/crash/receiverCrashes.ts) with the default plan and --quick: the
  // reference's own store, so neither with a mutant nor with a geometry of the volume's exploration.
  if (!custom && values.mutant === undefined) {
    const faults = receiverFaults.filter(
      (fault) => modes.includes(fault as ExplorationMode) || values.modes === undefined,
    );
    const report = receiverCrashesReport({ seed: receiverSeed, historyCount: values.quick ? 1 : 40, faults });
    output.out(`${report.lines.join('\n')}\n`);
    if (report.failed) {
      output.out(`${formatTotals(all)}\n`);
      return 1;
    }
  }
  const sampled = all.reduce((sum, stats) => sum + stats.sampledPoints, 0);
  output.out(
    `every crash state recovered to a state the model allows, and finished a cycle${sampled > 0 ? ` (${sampled} crash points sampled, not exhausted)` : ''}\n`,
  );
  output.out(`${formatTotals(all)}\n`);
  return 0;
}

export const command = defineCommand(description, ({ values }) =>
  crashes(values, {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    progress: process.stderr.isTTY === true,
  }),
);
