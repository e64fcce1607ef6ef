// fast-check command sequences: random sequences of writes, swaps, transfers (of
// current and of non-current regions), completions (early and drained), whole
// cycles, reads, crashes between operations and crashes inside an operation
// after its k-th I/O call (process, power and torn), each followed by a
// recovery, and a kill inside an operation whose recovery is followed by a power
// loss inside the next one, run against an implementation through the oracle.
//
// Regions are picked over the whole volume, boundaries favoured (geometry.ts);
// writes carry full-region bytes (regionData.ts) unless data is 'labels'. A
// history minimum makes every searched sequence long enough (operations and
// completed cycles since create) to cross counters and slot reuse.
//
// The design, in fast-check's own style: ONE small command class
// (PlannedCommand, in harness/fuzz/command.ts) holding planned steps, made concrete at run time from a small
// fast-check model (FuzzModel): the bytes a write carries (near-copies of what
// the run wrote), the regions a cycle sends (a superset of C). The model is
// deliberately coarser than the system and only plans; the real judge is the
// oracle inside `real`, which steps the statechart beside the implementation,
// compares their whole states, checks every invariant and judges every recovered
// state. Rejections are generated on purpose and the oracle checks that the
// implementation gives the model's code.
//
// On a failure fast-check shrinks the sequence; the shortest failing one is run
// again through runScenario, which records it, and saved as a v1 trace in
// traces/failures/fuzz-<seed>.jsonl with the seed, the path, the failure and the
// commands that replay it.
//
// Replaying a fast-check counterexample of `fc.commands` needs, besides the seed
// and the shrink path, the commands' replayPath (which commands ran at each shrink
// step): the path this module prints is `<fast-check path>@<replayPath>`. The
//
// runFuzz is the orchestration of those steps: the settings checked, the
// generation resolved (harness/fuzz/generation.ts), the property run by fast-check
// under its budgets (budgets.ts) while the tally counts (tally.ts), and a failure
// saved (failure.ts).

import fc from 'fast-check';
import { sectorSize } from '../../impl/geometry.ts';
import { allTransitions } from '../../model/transitions.ts';
import type { Geometry } from '../../model/types.ts';
import { Oracle } from '../oracle/oracle.ts';
import type { SystemUnderTest } from '../sut/systemUnderTest.ts';
import { ContentBook } from '../trace/content.ts';
import type { FaultMode } from '../types.ts';
import { commandArbitrary, cycleWeightFor } from './arbitraries.ts';
import { SequenceRun } from './command.ts';
import { FuzzBudgets } from './budgets.ts';
import { saveFailure } from './failure.ts';
import type { Generation } from './generation.ts';
import { errorMessage, guarded } from './guarded.ts';
import { freshModel } from './model.ts';
import type { FuzzModel } from './model.ts';
import { fuzzDefaults, runsUnbounded } from './options.ts';
import type { FuzzFailure, FuzzOptions, FuzzResult } from './options.ts';
import { parseFuzzPath } from './path.ts';
import { FuzzTally } from './tally.ts';

type Sequence = [Iterable<fc.AsyncCommand<FuzzModel, SequenceRun>>];
type Replay = ReturnType<typeof parseFuzzPath> | null;

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const tally = new FuzzTally(options, performance.now());
  const generation = await generationOf(options);
  const geometry: Geometry = { regions: generation.regions, regionSize: generation.regionSize };
  const replay = options.path === undefined ? null : parseFuzzPath(options.path);
  const budgets = new FuzzBudgets(options, replay !== null, tally);
  const property = fc.asyncProperty(sequencesOf(options, generation, replay), (commands) =>
    runSequence(options, geometry, tally, commands),
  );
  const details = await checkProperty(options, property, replay, budgets);
  if (replay !== null && tally.runs === 0) {
    throw new RangeError(
      `fuzz: the path '${options.path}' with seed ${options.seed} leads to no sequence ` +
        '(give the same options as the run that printed it)',
    );
  }
  let failure: FuzzFailure | null = null;
  if (details.failed && details.counterexample !== null) {
    failure = await saveFailure(options, generation, geometry, {
      commands: details.counterexample[0],
      fastCheckPath: details.counterexamplePath ?? '',
      error: details.errorInstance,
      replay,
      shrinkCutShort: budgets.stoppedBy === 'shrink budget',
    });
  } else if (details.failed && !details.interrupted) {
    throw new Error('fuzz: fast-check failed without a counterexample (too many skips)');
  }
  return resultOf(options, tally, budgets, failure);
}

/** The longest sequence generated: commandsMax, raised so that the history minimum is reachable. */
function commandsMaxOf(options: FuzzOptions): number {
  const history = options.historyMin;
  // Lengths are uniform up to commandsMax: half again the history's length keeps a third of the sequences long enough.
  return Math.max(
    options.commandsMax ?? fuzzDefaults.commandsMax,
    Math.ceil(((history?.operations ?? 0) * 3) / 2),
    history?.cycles ?? 0,
  );
}

/** The options checked (a RangeError names the bad one). */
function checkOptions(options: FuzzOptions): void {
  const history = options.historyMin;
  const regionSize = options.regionSize ?? fuzzDefaults.regionSize;
  const labels = options.labels ?? fuzzDefaults.labels;
  const data = options.data ?? fuzzDefaults.data;
  const commandsMax = commandsMaxOf(options);
  const count = (value: number, min: number) => Number.isInteger(value) && value >= min;
  if (!count(options.regions, 1)) throw new RangeError('fuzz: regions must be a positive integer');
  if (history !== undefined && !(count(history.operations, 0) && count(history.cycles, 0)))
    throw new RangeError('fuzz: historyMin needs non-negative integer operations and cycles');
  if (data !== 'labels' && data !== 'bytes')
    throw new RangeError(`fuzz: data must be 'labels' or 'bytes', got '${String(data)}'`);
  if (!count(labels, 1)) throw new RangeError('fuzz: labels must be a positive integer');
  if (!count(commandsMax, 1)) throw new RangeError('fuzz: commandsMax must be a positive integer');
  if (!count(regionSize, sectorSize) || regionSize % sectorSize !== 0)
    throw new RangeError('fuzz: regionSize must be a positive multiple of 512');
}

/** What to generate: the options checked, and the crashes the implementation's features offer (a probe tells). */
async function generationOf(options: FuzzOptions): Promise<Generation> {
  checkOptions(options);
  const probe = options.makeSut();
  const features = probe.features;
  const sutName = probe.name;
  await probe.close();
  const crashModes: FaultMode[] = [];
  if (options.crashModes !== undefined) {
    crashModes.push(...options.crashModes);
  } else if (features.has('failpoint')) {
    crashModes.push('process');
    if (features.has('power-loss')) crashModes.push('power');
    if (features.has('power-loss') && features.has('torn')) crashModes.push('torn');
  }
  const crashBetween = options.crashBetween ?? true;
  return {
    regions: options.regions,
    labels: options.labels ?? fuzzDefaults.labels,
    regionSize: options.regionSize ?? fuzzDefaults.regionSize,
    ioMax: options.ioMax ?? fuzzDefaults.ioMax,
    crashModes,
    crashBetween,
    data: options.data ?? fuzzDefaults.data,
    cycleWeight: cycleWeightFor(options.historyMin, crashBetween || crashModes.length > 0),
    sutName,
  };
}

/** The sequences, unbiased: fast-check's bias favours very short ones; lengths are uniform in 0..commandsMax. */
function sequencesOf(options: FuzzOptions, generation: Generation, replay: Replay) {
  return fc.noBias(
    fc.commands([commandArbitrary(generation)], {
      maxCommands: commandsMaxOf(options),
      size: 'max',
      ...(replay?.replayPath === undefined ? {} : { replayPath: replay.replayPath }),
    }),
  );
}

/** One sequence on a fresh implementation, judged by the oracle; the tally counts it whatever its end. */
async function runSequence(
  options: FuzzOptions,
  geometry: Geometry,
  tally: FuzzTally,
  commands: Iterable<fc.AsyncCommand<FuzzModel, SequenceRun>>,
): Promise<void> {
  const sut: SystemUnderTest = guarded(options.makeSut());
  const oracle = new Oracle(geometry, new ContentBook(geometry.regionSize), sut);
  const real = new SequenceRun(oracle, oracle.book);
  let failed = true;
  try {
    await fc.asyncModelRun(async () => {
      await oracle.start();
      return { model: freshModel(geometry.regionSize), real };
    }, commands);
    failed = false;
    tally.passed(real);
  } finally {
    tally.ran(oracle, failed);
    await sut.close();
  }
}

/** fast-check's run of the property, under the budgets (a path replay runs the counterexample, and shrinks on from it). */
async function checkProperty(
  options: FuzzOptions,
  property: fc.IAsyncProperty<Sequence>,
  replay: Replay,
  budgets: FuzzBudgets,
): Promise<fc.RunDetails<Sequence>> {
  const numRuns = options.numRuns ?? (options.timeBudgetMs === undefined ? fuzzDefaults.numRuns : runsUnbounded);
  try {
    return await fc.check(property, {
      seed: options.seed,
      numRuns,
      // Sequences short of the history are skipped: up to two in three.
      maxSkipsPerRun: 1000,
      plugins: [budgets.plugin],
      ...(replay === null ? {} : { path: replay.path }),
    });
  } catch (error) {
    // fast-check cannot walk a path generated with other options (regions, labels, ...).
    if (replay === null) throw error;
    throw new RangeError(
      `fuzz: cannot replay path '${options.path}' with seed ${options.seed}: ${errorMessage(error)} ` +
        '(give the same options as the run that printed it)',
    );
  }
}

function resultOf(
  options: FuzzOptions,
  tally: FuzzTally,
  budgets: FuzzBudgets,
  failure: FuzzFailure | null,
): FuzzResult {
  const transitionIds = allTransitions().map((info) => info.id);
  const missing = transitionIds.filter((id) => !tally.hits.has(id));
  return {
    seed: options.seed,
    runs: tally.runs,
    shrinks: tally.shrinks,
    steps: tally.steps,
    invariantChecks: tally.invariantChecks,
    crashStates: tally.crashStates,
    covered: new Set(tally.hits.keys()),
    hits: tally.hits,
    transitions: { covered: transitionIds.length - missing.length, total: transitionIds.length, missing },
    seconds: tally.seconds(),
    interrupted: budgets.stoppedBy === 'time budget',
    shortestRun: tally.shortestRun,
    failure,
  };
}
