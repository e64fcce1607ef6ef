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
import { fuzzDefaults } from '../../harness/fuzz/options.ts';
import { runFuzz } from '../../harness/fuzz/run.ts';
import type { FuzzData, FuzzResult, HistoryMin } from '../../harness/fuzz/options.ts';
import type { FaultMode } from '../../harness/types.ts';
import { regionsMax } from '../../model/rules.ts';
import { ReferenceSut } from '../../harness/sut/referenceSut.ts';
import type { VolumeClass } from '../../harness/types.ts';
import { sectorSize } from '../../impl/geometry.ts';
import type { Values } from '../command.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/fuzz.ts';
import { reportFailure } from '../failure.ts';
import { integerOption, optionalIntegerOption } from '../integerOption.ts';
import { mutantOption } from '../mutantOption.ts';
import { parseCommandArgs } from '../parseCommand.ts';
import { UsageError } from '../usageError.ts';

export interface FuzzOutput {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Show progress on err (only worth it on a terminal). */
  readonly progress: boolean;
}

/** fast-check takes any 32-bit signed seed; a random one is drawn from the non-negative half. */
const seedBounds = { min: -0x8000_0000, max: 0x7fff_ffff };

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

/** `--crash-modes`: undefined (what the implementation offers), none, or a list. */
function parseCrashModes(text: string | undefined): readonly FaultMode[] | undefined {
  if (text === undefined) return undefined;
  if (text === 'none') return [];
  const modes = text.split(',');
  const known: readonly string[] = ['process', 'power', 'torn'];
  if (modes.length === 0 || !modes.every((mode) => known.includes(mode)) || new Set(modes).size !== modes.length)
    throw new UsageError(`--crash-modes must be none or a comma list of process, power, torn, got '${text}'`);
  return modes as FaultMode[];
}

/** What a failure prints: the difference, the saved trace, and how to replay it. */
function failureReport(failure: NonNullable<FuzzResult['failure']>, seed: number): string {
  return `${[
    `FAIL: ${failure.message}`,
    ...failure.differences.map((d) => `  ${d.field}: expected ${d.expected}, observed ${d.observed}`),
    `shortest failing sequence (${failure.steps.length} steps), saved to ${failure.tracePath}` +
      `${failure.reproduced ? '' : ' (WARNING: replaying the saved trace did not fail again)'}:`,
    ...(failure.shrinkCutShort
      ? ['(the shrink budget ran out: a shorter one may exist; the fuzz command below resumes shrinking from this one)']
      : []),
    failure.trace.trimEnd(),
    `seed: ${seed}`,
    `path: ${failure.path}`,
    'replay:',
    ...failure.replay.map((line) => `  ${line}`),
  ].join('\n')}\n`;
}

/** One of `choices`, or a UsageError naming them. */
function choiceOption<T extends string>(name: string, text: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(text)) return text as T;
  throw new UsageError(`--${name} must be ${choices.join(' or ')}, got '${text}'`);
}

/** The run's settings from the options (a UsageError when they do not make one). */
function settingsOf(values: Values<typeof description.options>) {
  const regionSize = integerOption('region-size', values['region-size'] ?? String(fuzzDefaults.regionSize), {
    min: sectorSize,
    max: 1 << 20,
  });
  if (regionSize % sectorSize !== 0)
    throw new UsageError(`--region-size must be a multiple of ${sectorSize}, got ${regionSize}`);
  const historyMin: HistoryMin | undefined =
    values['history-operations'] === undefined && values['history-cycles'] === undefined
      ? undefined
      : {
          operations: integerOption('history-operations', values['history-operations'] ?? '0', {
            min: 0,
            max: 1_000_000,
          }),
          cycles: integerOption('history-cycles', values['history-cycles'] ?? '0', { min: 0, max: 100_000 }),
        };
  return {
    seed: values.seed === undefined ? randomInt(0, seedBounds.max) : integerOption('seed', values.seed, seedBounds),
    runs: optionalIntegerOption('runs', values.runs, { min: 1, max: 1_000_000_000 }),
    budgetSeconds: optionalIntegerOption('time-budget', values['time-budget'], { min: 1, max: 7 * 24 * 3600 }),
    regions: integerOption('regions', values.regions ?? String(fuzzDefaults.regions), { min: 1, max: regionsMax }),
    labels: integerOption('labels', values.labels ?? String(fuzzDefaults.labels), { min: 1, max: 99 }),
    commandsMax: integerOption('commands-max', values['commands-max'] ?? String(fuzzDefaults.commandsMax), {
      min: 1,
      max: 10_000,
    }),
    regionSize,
    ioMax: integerOption('io-max', values['io-max'] ?? String(fuzzDefaults.ioMax), { min: 0, max: 1000 }),
    data: choiceOption<FuzzData>('data', values.data ?? fuzzDefaults.data, ['labels', 'bytes']),
    crashModes: parseCrashModes(values['crash-modes']),
    crashBetween: choiceOption('crash-between', values['crash-between'], ['yes', 'no']) === 'yes',
    historyMin,
    mutant: values.mutant === undefined ? undefined : mutantOption(values.mutant),
  };
}

/** The command, with its output streams as parameters (for tests): parses `argv`, reports bad usage, runs. */
export async function fuzzMain(argv: string[], output: FuzzOutput): Promise<number> {
  try {
    const { values } = parseCommandArgs(description, argv, () => undefined);
    return await fuzz(values as Values<typeof description.options>, output);
  } catch (error) {
    if (error instanceof UsageError) return reportFailure(error, description.name, description.usage);
    throw error;
  }
}

async function fuzz(values: Values<typeof description.options>, output: FuzzOutput): Promise<number> {
  const settings = settingsOf(values);
  const { seed, runs, budgetSeconds, regions, labels, commandsMax, regionSize, ioMax, data } = settings;
  const { crashModes, crashBetween, historyMin, mutant } = settings;
  const volumeClass: VolumeClass | undefined = mutant?.volumeClass;
  const sutName =
    mutant === undefined ? 'the reference implementation' : `mutant '${values.mutant}' (${mutant.description})`;

  // The seed first: every random run can be repeated.
  output.out(`seed: ${seed}\n`);
  const historyText =
    historyMin === undefined ? '' : ` history>=${historyMin.operations} ops/${historyMin.cycles} cycles`;
  output.out(
    `fuzz on ${sutName}: regions=${regions} region-size=${regionSize} data=${data}` +
      `${data === 'labels' ? ` labels=${labels}` : ''} commands-max=${commandsMax} io-max=${ioMax}${historyText}` +
      `${runs === undefined ? '' : ` runs=${runs}`}${budgetSeconds === undefined ? '' : ` time-budget=${budgetSeconds}s`}` +
      `${values.path === undefined ? '' : ` path=${values.path}`}\n`,
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
      failuresDir: values['out-dir'] ?? fuzzDefaults.failuresDir,
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
    if (error instanceof RangeError) throw new UsageError(error.message);
    throw error;
  }
  if (showProgress) output.err('\r\x1b[K');
  output.out(summary(result));
  const failure = result.failure;
  if (failure === null) {
    output.out(`ok: no failure in ${result.runs} runs (seed ${seed})\n`);
    return 0;
  }
  output.out(failureReport(failure, seed));
  return 1;
}

export const command = defineCommand(description, ({ values }) =>
  fuzz(values, {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    progress: process.stderr.isTTY === true,
  }),
);
