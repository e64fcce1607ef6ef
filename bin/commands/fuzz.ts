// cowmap fuzz [--seed N] [--path P] [--runs R] [--time-budget S] [--regions N]
//             [--labels L] [--commands-max C] [--region-size B] [--io-max K]
//             [--mutant NAME] [--out-dir DIR] [--quiet]
// fast-check command sequences against the reference implementation (or a named
// mutant of it), through the oracle. The seed is printed first, so that every
// random run can be repeated. Exit status: 0 no failure, 1 a failure (the
// shortest failing sequence is saved as a v1 trace, and the commands that replay
// it are printed), 2 bad usage.

import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { fuzzDefaults, runFuzz } from '../../harness/commandSequences.ts';
import type { FuzzResult } from '../../harness/commandSequences.ts';
import { mutants } from '../../harness/mutants.ts';
import { ReferenceSut } from '../../harness/referenceSut.ts';
import type { VolumeClass } from '../../harness/referenceSut.ts';
import type { Command } from '../main.ts';
import { integerOption, usageError } from './options.ts';

export interface FuzzOutput {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Show progress on err (only worth it on a terminal). */
  readonly progress: boolean;
}

const seedMin = -0x8000_0000;
const seedMax = 0x7fff_ffff;

function summary(result: FuzzResult): string {
  const rate = Math.round(result.steps / Math.max(result.seconds, 1e-6));
  const lines = [
    `  runs:          ${result.runs}${result.shrinks > 0 ? ` (+ ${result.shrinks} while shrinking)` : ''}${result.interrupted ? ' (time budget reached)' : ''}`,
    `  steps:         ${result.steps}`,
    `  steps/s:       ${rate}`,
    `  crash states:  ${result.crashStates}`,
    `  transitions:   ${result.transitions.covered} of ${result.transitions.total} covered`,
    `  seconds:       ${result.seconds.toFixed(2)}`,
  ];
  if (result.transitions.missing.length > 0 && result.transitions.missing.length <= 8) {
    lines.push(`  not covered:   ${result.transitions.missing.join(', ')}`);
  }
  return lines.join('\n') + '\n';
}

/** The command, with its output streams as parameters (for tests). */
export async function fuzzMain(argv: string[], output: FuzzOutput): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      seed: { type: 'string' },
      path: { type: 'string' },
      runs: { type: 'string' },
      'time-budget': { type: 'string' },
      regions: { type: 'string', default: String(fuzzDefaults.regions) },
      labels: { type: 'string', default: String(fuzzDefaults.labels) },
      'commands-max': { type: 'string', default: String(fuzzDefaults.commandsMax) },
      'region-size': { type: 'string', default: String(fuzzDefaults.regionSize) },
      'io-max': { type: 'string', default: String(fuzzDefaults.ioMax) },
      mutant: { type: 'string' },
      'out-dir': { type: 'string', default: fuzzDefaults.failuresDir },
      quiet: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const seed = values.seed === undefined ? randomInt(0, seedMax) : integerOption('--seed', values.seed, seedMin, seedMax);
  const runs = values.runs === undefined ? undefined : integerOption('--runs', values.runs, 1, 1_000_000_000);
  const budgetSeconds = values['time-budget'] === undefined ? undefined : integerOption('--time-budget', values['time-budget'], 1, 7 * 24 * 3600);
  const regions = integerOption('--regions', values.regions, 1, 26);
  const labels = integerOption('--labels', values.labels, 1, 99);
  const commandsMax = integerOption('--commands-max', values['commands-max'], 1, 10_000);
  const regionSize = integerOption('--region-size', values['region-size'], 512, 1 << 20);
  const ioMax = integerOption('--io-max', values['io-max'], 0, 1000);
  if (seed === null || runs === null || budgetSeconds === null || regions === null || labels === null || commandsMax === null || regionSize === null || ioMax === null) {
    return usageError('fuzz');
  }
  if (regionSize % 512 !== 0) return usageError('fuzz', `--region-size must be a multiple of 512, got ${regionSize}`);

  let volumeClass: VolumeClass | undefined;
  let sutName = 'the reference implementation';
  if (values.mutant !== undefined) {
    const mutant = mutants[values.mutant];
    if (mutant === undefined) return usageError('fuzz', `no mutant named '${values.mutant}' (known: ${Object.keys(mutants).join(', ')})`);
    volumeClass = mutant.volumeClass;
    sutName = `mutant '${values.mutant}' (${mutant.description})`;
  }

  // The seed first: every random run can be repeated.
  output.out(`seed: ${seed}\n`);
  output.out(`fuzz on ${sutName}: regions=${regions} labels=${labels} commands-max=${commandsMax} region-size=${regionSize} io-max=${ioMax}` +
    `${runs === undefined ? '' : ` runs=${runs}`}${budgetSeconds === undefined ? '' : ` time-budget=${budgetSeconds}s`}${values.path === undefined ? '' : ` path=${values.path}`}\n`);

  const showProgress = output.progress && !values.quiet;
  let result: FuzzResult;
  try {
    result = await runFuzz({
      seed,
      ...(values.path === undefined ? {} : { path: values.path }),
      ...(runs === undefined ? {} : { numRuns: runs }),
      ...(budgetSeconds === undefined ? {} : { timeBudgetMs: budgetSeconds * 1000 }),
      regions,
      labels,
      commandsMax,
      regionSize,
      ioMax,
      makeSut: () => new ReferenceSut({ ...(volumeClass === undefined ? {} : { volumeClass }), name: sutName }),
      failuresDir: values['out-dir'],
      replayArgs: values.mutant === undefined ? [] : ['--mutant', values.mutant],
      ...(showProgress
        ? { onProgress: (p) => output.err(`\r  ${p.phase === 'search' ? `${p.runs} runs` : `shrinking (${p.shrinks} tried)`}, ${p.steps} steps, ${p.seconds.toFixed(0)} s\x1b[K`) }
        : {}),
    });
  } catch (error) {
    if (showProgress) output.err('\r\x1b[K');
    if (error instanceof RangeError) return usageError('fuzz', error.message);
    throw error;
  }
  if (showProgress) output.err('\r\x1b[K');
  output.out(summary(result));
  const failure = result.failure;
  if (failure === null) {
    output.out(`ok: no failure in ${result.runs} runs (seed ${seed})\n`);
    return 0;
  }
  output.out(
    [
      `FAIL: ${failure.message}`,
      ...failure.differences.map((d) => `  ${d.field}: expected ${d.expected}, observed ${d.observed}`),
      `shortest failing sequence (${failure.steps.length} steps), saved to ${failure.tracePath}${failure.reproduced ? '' : ' (WARNING: replaying the saved trace did not fail again)'}:`,
      ...(failure.shrinkCutShort ? ['(the shrink budget ran out: a shorter one may exist; the fuzz command below resumes shrinking from this one)'] : []),
      failure.trace.trimEnd(),
      `seed: ${seed}`,
      `path: ${failure.path}`,
      'replay:',
      ...failure.replay.map((line) => `  ${line}`),
    ].join('\n') + '\n',
  );
  return 1;
}

export const command: Command = {
  summary: 'fast-check command sequences against the reference implementation',
  run(argv) {
    return fuzzMain(argv, {
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
      progress: process.stderr.isTTY === true,
    });
  },
};
