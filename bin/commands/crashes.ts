// cowmap crashes [--length L] [--regions N] [--values V] [--modes process,power,torn]
//                [--subset-bits B] [--samples S] [--region-size BYTES] [--mutant NAME]
//                [--out-dir DIR] [--no-dedupe] [--quiet]
// Bounded exhaustive crash exploration (harness/crashExploration.ts): every
// operation sequence up to length L on N regions, each accepted operation crashed
// at every durable I/O call, in process, power (every subset of the unsynced
// writes up to 2^B, else S seeded samples) and torn mode, each crash state
// recovered and checked against the model. Prints the summary table. Exit status:
// 0 every crash state passes, 1 a failure (saved as a v1 trace and printed),
// 2 bad usage.

import { parseArgs } from 'node:util';
import { exploreCrashes, explorationDefaults, explorationModes, formatFailureReport, formatSummary, statesPerSecond } from '../../harness/crashExploration.ts';
import type { ExplorationMode, ExplorationOptions, ExplorationStats, VolumeClass } from '../../harness/crashExploration.ts';
import { mutants } from '../../harness/mutants.ts';
import type { Command } from '../main.ts';
import { integerOption, usageError } from './options.ts';

export interface CrashesOutput {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Show progress on err (only worth it on a terminal). */
  readonly progress: boolean;
}

function parseModes(text: string): ExplorationMode[] | null {
  const modes = text.split(',').map((mode) => mode.trim()).filter((mode) => mode !== '');
  if (modes.length === 0) return null;
  for (const mode of modes) if (!(explorationModes as readonly string[]).includes(mode)) return null;
  return modes as ExplorationMode[];
}

function progressLine(stats: ExplorationStats): string {
  return `\r  ${stats.prefixes.toLocaleString('en-US')} prefixes, ${stats.crashPoints.toLocaleString('en-US')} crash points, ${stats.crashStates.toLocaleString('en-US')} crash states, ${statesPerSecond(stats)} states/s`;
}

/** The command, with its output streams as parameters (for tests). */
export async function crashesMain(argv: string[], output: CrashesOutput): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      length: { type: 'string', default: String(explorationDefaults.length) },
      regions: { type: 'string', default: String(explorationDefaults.regions) },
      values: { type: 'string', default: String(explorationDefaults.values) },
      modes: { type: 'string', default: explorationModes.join(',') },
      'subset-bits': { type: 'string', default: String(explorationDefaults.subsetBitsMax) },
      samples: { type: 'string', default: String(explorationDefaults.samplesMax) },
      'region-size': { type: 'string', default: String(explorationDefaults.regionSize) },
      mutant: { type: 'string' },
      'out-dir': { type: 'string', default: explorationDefaults.failuresDir },
      'no-dedupe': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const length = integerOption('--length', values.length, 0, 8);
  const regions = integerOption('--regions', values.regions, 1, 8);
  const valueCount = integerOption('--values', values.values, 1, 8);
  const subsetBits = integerOption('--subset-bits', values['subset-bits'], 0, 20);
  const samples = integerOption('--samples', values.samples, 1, 1 << 20);
  const regionSize = integerOption('--region-size', values['region-size'], 512, 1 << 20);
  if (length === null || regions === null || valueCount === null || subsetBits === null || samples === null || regionSize === null) return usageError('crashes');
  if (regionSize % 512 !== 0) return usageError('crashes', `--region-size must be a multiple of 512, got ${regionSize}`);
  const modes = parseModes(values.modes);
  if (modes === null) return usageError('crashes', `--modes must be a comma-separated list of ${explorationModes.join(', ')}, got '${values.modes}'`);
  let volumeClass: VolumeClass | undefined;
  if (values.mutant !== undefined) {
    const mutant = mutants[values.mutant];
    if (mutant === undefined) return usageError('crashes', `no mutant named '${values.mutant}' (known: ${Object.keys(mutants).join(', ')})`);
    volumeClass = mutant.volumeClass;
  }

  const progress = output.progress && !values.quiet;
  const options: ExplorationOptions = {
    length,
    regions,
    values: valueCount,
    regionSize,
    modes,
    subsetBitsMax: subsetBits,
    samplesMax: samples,
    volumeClass,
    volumeName: values.mutant === undefined ? 'the reference implementation' : `mutant ${values.mutant}`,
    failuresDir: values['out-dir'],
    dedupePrefixes: !values['no-dedupe'],
    onProgress: progress ? (stats) => output.err(progressLine(stats)) : undefined,
  };
  const result = await exploreCrashes(options);
  if (progress) output.err('\r\x1b[K');
  output.out(formatSummary(result.stats, options) + '\n');
  if (result.failure === null) {
    const sampled = result.stats.sampledPoints > 0 ? ` (${result.stats.sampledPoints} crash points sampled, not exhausted)` : '';
    output.out(`every crash state recovered to a state the model allows, and finished a cycle${sampled}\n`);
    return 0;
  }
  output.out(formatFailureReport(result.failure) + '\n');
  if (result.failure.file !== null && result.failure.notReplayable === undefined) {
    output.out(`replay it: cowmap replay${values.mutant === undefined ? '' : ` --mutant ${values.mutant}`} ${result.failure.file}\n`);
  }
  return 1;
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
