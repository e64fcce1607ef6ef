// cowmap fuzz [--seed N] [--path P] [--runs R] [--time-budget S] [--regions N]
//             [--region-size B] [--data labels|bytes] [--labels L]
//             [--commands-max C] [--io-max K] [--crash-modes LIST|none]
//             [--crash-between yes|no] [--history-operations N --history-cycles M]
//             [--mutant NAME] [--out-dir DIR] [--quiet]
// fast-check command sequences against the reference implementation (or a named
// mutant of it), through the oracle. The seed is printed first, so that every
// random run can be repeated. Exit status: 0 no failure, 1 a failure (the
// shortest failing sequence is saved as a v1 trace, and the commands that replay
// it are printed: they give every option the sequences depend on), 2 bad usage.

import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { fuzzDefaults, runFuzz } from '../../harness/commandSequences.ts';
import type { FuzzData, FuzzResult, HistoryMin } from '../../harness/commandSequences.ts';
import type { FaultMode } from '../../harness/types.ts';
import { regionsMax } from '../../model/rules.ts';
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
    ...(result.shortestRun === null
      ? []
      : [
          `  shortest run:  ${result.shortestRun.operations} operations, ${result.shortestRun.cycles} cycles completed`,
        ]),
    `  transitions:   ${result.transitions.covered} of ${result.transitions.total} covered`,
    `  seconds:       ${result.seconds.toFixed(2)}`,
  ];
  if (result.transitions.missing.length > 0 && result.transitions.missing.length <= 8) {
    lines.push(`  not covered:   ${result.transitions.missing.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `--crash-modes`: undefined (what the implementation offers), none, or a list; null when invalid. */
function parseCrashModes(text: string | undefined): readonly FaultMode[] | undefined | null {
  if (text === undefined) return undefined;
  if (text === 'none') return [];
  const modes = text.split(',');
  const known: readonly string[] = ['process', 'power', 'torn'];
  if (modes.length === 0 || !modes.every((mode) => known.includes(mode)) || new Set(modes).size !== modes.length)
    return null;
  return modes as FaultMode[];
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
      data: { type: 'string', default: fuzzDefaults.data },
      'crash-modes': { type: 'string' },
      'crash-between': { type: 'string', default: 'yes' },
      'history-operations': { type: 'string' },
      'history-cycles': { type: 'string' },
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
  const seed =
    values.seed === undefined ? randomInt(0, seedMax) : integerOption('--seed', values.seed, seedMin, seedMax);
  const runs = values.runs === undefined ? undefined : integerOption('--runs', values.runs, 1, 1_000_000_000);
  const budgetSeconds =
    values['time-budget'] === undefined
      ? undefined
      : integerOption('--time-budget', values['time-budget'], 1, 7 * 24 * 3600);
  const regions = integerOption('--regions', values.regions, 1, regionsMax);
  const labels = integerOption('--labels', values.labels, 1, 99);
  const commandsMax = integerOption('--commands-max', values['commands-max'], 1, 10_000);
  const regionSize = integerOption('--region-size', values['region-size'], 512, 1 << 20);
  const ioMax = integerOption('--io-max', values['io-max'], 0, 1000);
  if (
    seed === null ||
    runs === null ||
    budgetSeconds === null ||
    regions === null ||
    labels === null ||
    commandsMax === null ||
    regionSize === null ||
    ioMax === null
  ) {
    return usageError('fuzz');
  }
  if (regionSize % 512 !== 0) return usageError('fuzz', `--region-size must be a multiple of 512, got ${regionSize}`);
  if (values.data !== 'labels' && values.data !== 'bytes')
    return usageError('fuzz', `--data must be labels or bytes, got '${values.data}'`);
  const data: FuzzData = values.data;
  const crashModes = parseCrashModes(values['crash-modes']);
  if (crashModes === null)
    return usageError(
      'fuzz',
      `--crash-modes must be none or a comma list of process, power, torn, got '${values['crash-modes']}'`,
    );
  if (values['crash-between'] !== 'yes' && values['crash-between'] !== 'no')
    return usageError('fuzz', `--crash-between must be yes or no, got '${values['crash-between']}'`);
  const crashBetween = values['crash-between'] === 'yes';
  let historyMin: HistoryMin | undefined;
  if (values['history-operations'] !== undefined || values['history-cycles'] !== undefined) {
    const operations = integerOption('--history-operations', values['history-operations'] ?? '0', 0, 1_000_000);
    const cycles = integerOption('--history-cycles', values['history-cycles'] ?? '0', 0, 100_000);
    if (operations === null || cycles === null) return usageError('fuzz');
    historyMin = { operations, cycles };
  }

  let volumeClass: VolumeClass | undefined;
  let sutName = 'the reference implementation';
  if (values.mutant !== undefined) {
    const mutant = mutants[values.mutant];
    if (mutant === undefined)
      return usageError('fuzz', `no mutant named '${values.mutant}' (known: ${Object.keys(mutants).join(', ')})`);
    volumeClass = mutant.volumeClass;
    sutName = `mutant '${values.mutant}' (${mutant.description})`;
  }

  // The seed first: every random run can be repeated.
  output.out(`seed: ${seed}\n`);
  const historyText =
    historyMin === undefined ? '' : ` history>=${historyMin.operations} ops/${historyMin.cycles} cycles`;
  output.out(
    `fuzz on ${sutName}: regions=${regions} region-size=${regionSize} data=${data}${data === 'labels' ? ` labels=${labels}` : ''} commands-max=${commandsMax} io-max=${ioMax}${historyText}` +
      `${runs === undefined ? '' : ` runs=${runs}`}${budgetSeconds === undefined ? '' : ` time-budget=${budgetSeconds}s`}${values.path === undefined ? '' : ` path=${values.path}`}\n`,
  );

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
      data,
      crashBetween,
      ...(crashModes === undefined ? {} : { crashModes }),
      ...(historyMin === undefined ? {} : { historyMin }),
      makeSut: () => new ReferenceSut({ ...(volumeClass === undefined ? {} : { volumeClass }), name: sutName }),
      failuresDir: values['out-dir'],
      replayArgs: values.mutant === undefined ? [] : ['--mutant', values.mutant],
      ...(showProgress
        ? {
            onProgress: (p) =>
              output.err(
                `\r  ${p.phase === 'search' ? `${p.runs} runs` : `shrinking (${p.shrinks} tried)`}, ${p.steps} steps, ${p.seconds.toFixed(0)} s\x1b[K`,
              ),
          }
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
    `${[
      `FAIL: ${failure.message}`,
      ...failure.differences.map((d) => `  ${d.field}: expected ${d.expected}, observed ${d.observed}`),
      `shortest failing sequence (${failure.steps.length} steps), saved to ${failure.tracePath}${failure.reproduced ? '' : ' (WARNING: replaying the saved trace did not fail again)'}:`,
      ...(failure.shrinkCutShort
        ? [
            '(the shrink budget ran out: a shorter one may exist; the fuzz command below resumes shrinking from this one)',
          ]
        : []),
      failure.trace.trimEnd(),
      `seed: ${seed}`,
      `path: ${failure.path}`,
      'replay:',
      ...failure.replay.map((line) => `  ${line}`),
    ].join('\n')}\n`,
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
