// A fuzz failure, kept: the shortest failing sequence is run again through
// runScenario, which records it, saved as a v1 trace in traces/failures/
// fuzz-<seed>.jsonl with the seed, the path, the failure and the commands that
// replay it, and the saved trace replayed on a fresh implementation.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Geometry } from '../../model/types.ts';
import { OracleFailure } from '../oracle/oracle.ts';
import type { Difference } from '../oracle/oracle.ts';
import { replayTrace } from '../replay.ts';
import { describeScenarioStep, runScenario, scenarioTrace } from '../scenario.ts';
import type { ScenarioStep } from '../scenario.ts';
import { shellQuote } from '../shellQuote.ts';
import { ContentBook } from '../trace/content.ts';
import { createsConsistentVolumes } from '../sut/systemUnderTest.ts';
import { readTrace } from '../trace/reader.ts';
import { SequenceRun } from './command.ts';
import type { Generation } from './generation.ts';
import { errorMessage, guarded } from './guarded.ts';
import { freshModel } from './model.ts';
import type { FuzzModel } from './model.ts';
import { fuzzDefaults } from './options.ts';
import type { FuzzFailure, FuzzOptions } from './options.ts';
import { replayPathOf } from './path.ts';

/** What fast-check gives of its counterexample, and how the run ended. */
export interface Counterexample {
  readonly commands: Iterable<fc.AsyncCommand<FuzzModel, SequenceRun>>;
  readonly fastCheckPath: string;
  readonly error: unknown;
  readonly replay: { readonly path: string; readonly replayPath: string | undefined } | null;
  readonly shrinkCutShort: boolean;
}

/** The failing sequence re-run through runScenario: its message, differences and steps up to the failing one. */
interface Rerun {
  readonly collected: SequenceRun;
  readonly records: Awaited<ReturnType<typeof runScenario>>['records'];
  readonly message: string;
  readonly differences: readonly Difference[];
  readonly stepIndex: number;
  readonly steps: readonly ScenarioStep[];
  /** The features the saved trace needs: `consistent` when the run's volumes kept a consistent image. */
  readonly features: readonly string[];
}

/** Runs the shortest failing sequence again through runScenario, saves it as a v1 trace and replays the trace. */
export async function saveFailure(
  options: FuzzOptions,
  generation: Generation,
  geometry: Geometry,
  counterexample: Counterexample,
): Promise<FuzzFailure> {
  const { commands, fastCheckPath, replay, shrinkCutShort } = counterexample;
  const replayPath = replayPathOf(commands) ?? replay?.replayPath ?? null;
  const path = replayPath === null ? fastCheckPath : `${fastCheckPath}@${replayPath}`;
  const rerun = await rerunFailure(options, generation, geometry, counterexample);

  const dir = options.failuresDir ?? fuzzDefaults.failuresDir;
  mkdirSync(dir, { recursive: true });
  const tracePath = join(dir, `fuzz-${options.seed}.jsonl`);
  const mutantArgs = mutantOf(options.replayArgs ?? []);
  const replayCommands = options.replayCommands?.(tracePath, path) ?? [
    `npx cowmap replay ${mutantArgs}${shellQuote(tracePath)}`,
    `npx cowmap fuzz ${fuzzArgs(options, generation, path).map(shellQuote).join(' ')}`,
  ];
  const comments = traceComments(options, generation, path, rerun, shrinkCutShort, replayCommands);
  const firstLine = rerun.message.split('\n')[0]!;
  const title = `fuzz failure: ${firstLine}`;
  const trace = scenarioTrace(geometry, rerun.records, title, comments, options.seed, rerun.features);
  writeFileSync(tracePath, trace);

  // The saved trace must fail on its own, on a fresh implementation.
  const replayed = await replayTrace(readTrace(readFileSync(tracePath, 'utf8'), tracePath), guarded(options.makeSut()));
  return {
    message: rerun.message,
    differences: rerun.differences,
    path,
    steps: rerun.steps,
    stepIndex: rerun.stepIndex,
    tracePath,
    trace,
    reproduced: replayed.failure !== null,
    shrinkCutShort,
    replay: replayCommands,
  };
}

/** The commands the model lets run, as scenario steps (the model plans them exactly as in the failing run), run again. */
async function rerunFailure(
  options: FuzzOptions,
  generation: Generation,
  geometry: Geometry,
  { commands, error }: Counterexample,
): Promise<Rerun> {
  const collected = new SequenceRun(null, new ContentBook(generation.regionSize));
  await fc.asyncModelRun(() => ({ model: freshModel(generation.regionSize), real: collected }), commands);
  const sut = options.makeSut();
  const result = await runScenario(guarded(sut), geometry, collected.steps, collected.book);
  const message =
    result.failure?.message ??
    `${errorMessage(error)} (the re-run through runScenario passed: the failure did not reproduce)`;
  const differences = result.failure?.differences ?? (error instanceof OracleFailure ? error.differences : []);
  const stepIndex = result.failure?.stepIndex ?? Math.max(0, collected.steps.length - 1);
  const steps = collected.steps.slice(0, stepIndex + 1);
  const features = createsConsistentVolumes(sut) ? ['consistent'] : [];
  return { collected, records: result.records, message, differences, stepIndex, steps, features };
}

/** `--mutant NAME ` when the replay arguments name a mutant, so that the printed replay runs it. */
function mutantOf(args: readonly string[]): string {
  const at = args.indexOf('--mutant');
  return at >= 0 && args[at + 1] !== undefined ? `--mutant ${shellQuote(args[at + 1]!)} ` : '';
}

/** The arguments of the `cowmap fuzz` command that runs the counterexample again (same options). */
function fuzzArgs(options: FuzzOptions, generation: Generation, path: string): string[] {
  const history = options.historyMin;
  return [
    '--seed',
    String(options.seed),
    '--path',
    path,
    '--regions',
    String(generation.regions),
    '--data',
    generation.data,
    ...(generation.data === 'labels' ? ['--labels', String(generation.labels)] : []),
    '--commands-max',
    String(options.commandsMax ?? fuzzDefaults.commandsMax),
    '--region-size',
    String(generation.regionSize),
    '--io-max',
    String(generation.ioMax),
    '--crash-modes',
    generation.crashModes.length === 0 ? 'none' : generation.crashModes.join(','),
    '--crash-between',
    generation.crashBetween ? 'yes' : 'no',
    ...(history === undefined
      ? []
      : ['--history-operations', String(history.operations), '--history-cycles', String(history.cycles)]),
    ...(options.replayArgs ?? []),
  ];
}

/** The trace's comments: who found it, the seed and path, the failing step and the commands that replay it. */
function traceComments(
  options: FuzzOptions,
  generation: Generation,
  path: string,
  rerun: Rerun,
  shrinkCutShort: boolean,
  replayCommands: readonly string[],
): string[] {
  const { collected, stepIndex, steps, message, differences } = rerun;
  const failing = collected.steps[stepIndex];
  const failingStep =
    failing === undefined
      ? 'creating the volume'
      : `step ${stepIndex + 1} ('${describeScenarioStep(failing, collected.book)}')`;
  const shortest = `The shortest failing sequence${shrinkCutShort ? ' found before the shrink budget ran out' : ''}`;
  return [
    `Found by cowmap fuzz (fast-check command sequences) on ${generation.sutName}.`,
    `seed: ${options.seed}`,
    `path: ${path}`,
    `${shortest}: ${steps.length} steps; ${failingStep} fails:`,
    ...message.split('\n').map((line) => `  ${line}`),
    ...differences.map((d) => `  ${d.field}: expected ${d.expected}, observed ${d.observed}`),
    ...(options.replayCommands === undefined
      ? [
          'Replay this trace (cowmap replay runs the model beside the reference implementation):',
          `  ${replayCommands[0]}`,
          'Run this counterexample again through fast-check (same options):',
          `  ${replayCommands[1]}`,
        ]
      : [
          'Replay this failure (the trace, then the counterexample through fast-check, shrinking on):',
          ...replayCommands.map((command) => `  ${command}`),
        ]),
  ];
}
