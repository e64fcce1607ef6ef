// cowmap crashes [--quick] [--length L] [--regions N] [--active R,R,...] [--values V]
//                [--modes process,power,torn] [--subset-bits B] [--samples S]
//                [--region-size BYTES] [--mutant NAME] [--out-dir DIR] [--no-dedupe]
//                [--no-create] [--no-recovery] [--no-rot] [--no-byte-tears]
//                [--recovery-paths P] [--rot-states K] [--quiet]
// Bounded exhaustive crash exploration (harness/crashExploration.ts): every
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
// Prints the summary of each and the crash states per kind with the time. Exit
// status: 0 every crash state passes, 1 a failure (saved and printed), 2 bad usage.

import { parseArgs } from 'node:util';
import {
  exploreCrashes,
  explorationDefaults,
  explorationModes,
  formatFailureReport,
  formatSummary,
  statesPerKind,
  statesPerSecond,
} from '../../harness/crashExploration.ts';
import type {
  ExplorationMode,
  ExplorationOptions,
  ExplorationStats,
  VolumeClass,
} from '../../harness/crashExploration.ts';
import { mutants } from '../../harness/mutants.ts';
import type { Command } from '../main.ts';
import { integerOption, usageError, usageProblem } from './options.ts';

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

function parseModes(text: string): ExplorationMode[] | null {
  const modes = text
    .split(',')
    .map((mode) => mode.trim())
    .filter((mode) => mode !== '');
  if (modes.length === 0) return null;
  for (const mode of modes) if (!(explorationModes as readonly string[]).includes(mode)) return null;
  return modes as ExplorationMode[];
}

function parseRegionList(text: string, regions: number): number[] | null {
  const list = text.split(',').map((part) => part.trim());
  if (list.length === 0 || list.length > 8) return usageProblem(`--active takes 1 to 8 regions, got '${text}'`);
  const out: number[] = [];
  for (const part of list) {
    const region = integerOption('--active', part, 0, regions - 1);
    if (region === null) return null;
    if (!out.includes(region)) out.push(region);
  }
  return out;
}

function progressLine(stats: ExplorationStats): string {
  return `\r  ${stats.prefixes.toLocaleString('en-US')} prefixes, ${stats.crashPoints.toLocaleString('en-US')} crash points, ${stats.crashStates.toLocaleString('en-US')} crash states, ${statesPerSecond(stats)} states/s`;
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

/** The command, with its output streams as parameters (for tests). */
export async function crashesMain(argv: string[], output: CrashesOutput): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      length: { type: 'string' },
      regions: { type: 'string' },
      active: { type: 'string' },
      values: { type: 'string' },
      modes: { type: 'string', default: explorationModes.join(',') },
      'subset-bits': { type: 'string', default: String(explorationDefaults.subsetBitsMax) },
      samples: { type: 'string', default: String(explorationDefaults.samplesMax) },
      'region-size': { type: 'string' },
      mutant: { type: 'string' },
      'out-dir': { type: 'string', default: explorationDefaults.failuresDir },
      'no-dedupe': { type: 'boolean', default: false },
      'no-create': { type: 'boolean', default: false },
      'no-recovery': { type: 'boolean', default: false },
      'no-rot': { type: 'boolean', default: false },
      'no-byte-tears': { type: 'boolean', default: false },
      'recovery-paths': { type: 'string' },
      'rot-states': { type: 'string' },
      quiet: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const subsetBits = integerOption('--subset-bits', values['subset-bits'], 0, 20);
  const samples = integerOption('--samples', values.samples, 1, 1 << 20);
  if (subsetBits === null || samples === null) return usageError('crashes');
  const modes = parseModes(values.modes);
  if (modes === null)
    return usageError(
      'crashes',
      `--modes must be a comma-separated list of ${explorationModes.join(', ')}, got '${values.modes}'`,
    );

  // One exploration when any geometry option is given (the rest from the small default), else the plan.
  const custom = [values.length, values.regions, values.active, values.values, values['region-size']].some(
    (value) => value !== undefined,
  );
  let plan: readonly Shape[];
  if (custom) {
    const length = integerOption('--length', values.length ?? String(explorationDefaults.length), 0, 8);
    const regions = integerOption('--regions', values.regions ?? String(explorationDefaults.regions), 1, 1 << 16);
    const valueCount = integerOption('--values', values.values ?? String(explorationDefaults.values), 1, 8);
    const regionSize = integerOption(
      '--region-size',
      values['region-size'] ?? String(explorationDefaults.regionSize),
      512,
      1 << 20,
    );
    if (length === null || regions === null || valueCount === null || regionSize === null) return usageError('crashes');
    if (regionSize % 512 !== 0)
      return usageError('crashes', `--region-size must be a multiple of 512, got ${regionSize}`);
    let activeRegions: number[] | undefined;
    if (values.active !== undefined) {
      const parsed = parseRegionList(values.active, regions);
      if (parsed === null) return usageError('crashes');
      activeRegions = parsed;
    } else if (regions > 8) {
      return usageError('crashes', `--regions ${regions} needs --active (at most 8 regions written)`);
    }
    plan = [{ length, regions, values: valueCount, regionSize, activeRegions }];
  } else {
    plan = values.quick ? quickPlan : defaultPlan;
  }
  const recoveryPaths =
    values['recovery-paths'] === undefined
      ? undefined
      : integerOption('--recovery-paths', values['recovery-paths'], 0, 1 << 16);
  const rotStates =
    values['rot-states'] === undefined ? undefined : integerOption('--rot-states', values['rot-states'], 0, 1 << 16);
  if (recoveryPaths === null || rotStates === null) return usageError('crashes');
  let volumeClass: VolumeClass | undefined;
  if (values.mutant !== undefined) {
    const mutant = mutants[values.mutant];
    if (mutant === undefined)
      return usageError('crashes', `no mutant named '${values.mutant}' (known: ${Object.keys(mutants).join(', ')})`);
    volumeClass = mutant.volumeClass;
  }

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
      failuresDir: values['out-dir'],
      dedupePrefixes: !values['no-dedupe'],
      createCrashes: !values['no-create'],
      recoveryPathsMax: values['no-recovery'] ? 0 : (recoveryPaths ?? shape.recoveryPathsMax),
      rot: !values['no-rot'],
      rotStatesMax: rotStates ?? shape.rotStatesMax,
      byteTears: !values['no-byte-tears'],
      onProgress: progress ? (stats) => output.err(progressLine(stats)) : undefined,
    };
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
  const sampled = all.reduce((sum, stats) => sum + stats.sampledPoints, 0);
  output.out(
    `every crash state recovered to a state the model allows, and finished a cycle${sampled > 0 ? ` (${sampled} crash points sampled, not exhausted)` : ''}\n`,
  );
  output.out(`${formatTotals(all)}\n`);
  return 0;
}

export const command: Command = {
  summary: 'bounded exhaustive crash exploration',
  run: (argv) =>
    crashesMain(argv, {
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
      progress: process.stderr.isTTY === true,
    }),
};
