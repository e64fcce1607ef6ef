import type { Geometry } from '../../model/types.ts';
import { runFuzz } from '../fuzz/run.ts';
import type { FuzzOptions, FuzzResult } from '../fuzz/options.ts';
import { describeGeometry } from '../geometry.ts';
import { type Deadline, shrinkBudgetMs } from './budget.ts';
import { countUnit, newTally } from './context.ts';
import type { CheckContext, CheckTally } from './context.ts';
import { conformPathCommand, fromFuzz, replayCommand } from './failure.ts';
import { levels } from './plan.ts';
import type { CheckSpec } from './plan.ts';
import { geometryDeadline, geometryDir } from './geometryUnits.ts';

/** Operations and completed cycles since open that a long history has at least. */
export const historyMin = { operations: 300, cycles: 10 } as const;
/** Steps a long history is expected to take (its operations, the transfers of its cycles, its reads): for the estimate. */
export const historyStepsEstimate = 500;
/** Commands of a fast-check sequence at most. */
export const sequenceCommandsMax = 40;

/** The options of a generated check on one geometry: the same for a run and for `--path` replaying it. */
export function fuzzOptionsFor(spec: CheckSpec, geometry: Geometry, context: CheckContext): FuzzOptions {
  const history = spec.kind === 'history';
  return {
    seed: context.seed,
    regions: geometry.regions,
    regionSize: geometry.regionSize,
    data: 'bytes',
    commandsMax: history ? historyStepsEstimate : sequenceCommandsMax,
    ...(history ? { historyMin } : {}),
    crashBetween: spec.crashBetween,
    crashModes: spec.crashModes,
    makeSut: () => context.sut,
    failuresDir: geometryDir(context, spec, geometry),
    // The saved trace's comments replay it against the same adapter, not the reference.
    replayCommands: (tracePath, path) => [
      replayCommand(tracePath, context.command),
      conformPathCommand({ seed: context.seed, path, checkId: spec.id, geometry, command: context.command }),
    ],
  };
}

/** One runFuzz on one geometry, counted into the tally as one case. */
async function fuzzCase(
  spec: CheckSpec,
  geometry: Geometry,
  extra: Partial<FuzzOptions>,
  allotmentMs: number,
  context: CheckContext,
  tally: CheckTally,
): Promise<boolean> {
  tally.geometries.push(geometry);
  const base = context.stepsDone;
  context.progress(spec.id, describeGeometry(geometry));
  const started = performance.now();
  const result: FuzzResult = await runFuzz({
    ...fuzzOptionsFor(spec, geometry, context),
    timeBudgetMs: allotmentMs,
    shrinkBudgetMs: shrinkBudgetMs(allotmentMs, context.runDeadline.remainingMs(), context.budgetMs, context.keepGoing),
    onProgress: (progress) =>
      context.progress(
        spec.id,
        `${describeGeometry(geometry)}: ${progress.phase === 'shrink' ? `shrinking, ${progress.shrinks} tries` : `${progress.runs} runs`}`,
        base + progress.steps,
      ),
    ...extra,
  });
  for (const [id, times] of result.hits) context.hits.set(id, (context.hits.get(id) ?? 0) + times);
  // The transitions it covered are counted by their hits, just above.
  return recordFuzzCase(spec, geometry, result, [], performance.now() - started, context, tally);
}

/** A runFuzz's result counted into the tally as one case (with the command that replays its failure); true if it failed. */
function recordFuzzCase(
  spec: CheckSpec,
  geometry: Geometry,
  result: FuzzResult,
  covered: Iterable<string>,
  ms: number,
  context: CheckContext,
  tally: CheckTally,
): boolean {
  countUnit(context, tally, { runs: result.runs, steps: result.steps, crashPoints: result.crashStates, covered, ms });
  const failure =
    result.failure === null
      ? null
      : fromFuzz(
          result.failure,
          conformPathCommand({
            seed: context.seed,
            path: result.failure.path,
            checkId: spec.id,
            geometry,
            command: context.command,
          }),
          context.command,
        );
  tally.cases.push({
    name: describeGeometry(geometry),
    geometry: describeGeometry(geometry),
    runs: result.runs,
    steps: result.steps,
    seconds: ms / 1000,
    failure,
    skipped: null,
  });
  return failure !== null;
}

function skippedCase(geometry: Geometry) {
  return {
    name: describeGeometry(geometry),
    geometry: describeGeometry(geometry),
    runs: 0,
    steps: 0,
    seconds: 0,
    failure: null,
    skipped: 'not run: cut by the time budget',
  };
}

/** fast-check sequences on every geometry, each an equal share of the check's time (fast-check runs until its deadline by design). */
export async function runFuzzCheck(
  spec: CheckSpec,
  geometries: readonly Geometry[],
  deadline: Deadline,
  context: CheckContext,
): Promise<CheckTally> {
  const tally = newTally();
  for (const [index, geometry] of geometries.entries()) {
    if (context.interrupted()) break;
    const mine = geometryDeadline(deadline, geometries.length - index);
    const allotmentMs = mine.remainingMs();
    if (allotmentMs <= 0 || !mine.fits(context.rate.estimateMs(sequenceCommandsMax))) {
      tally.cutByBudget = true;
      tally.cases.push(skippedCase(geometry));
      continue;
    }
    if ((await fuzzCase(spec, geometry, {}, allotmentMs, context, tally)) && !context.keepGoing) return tally;
  }
  return tally;
}

/**
 * Long histories: one history a geometry, while the check's time fits one more.
 * A budget that fits a few runs a level spends them on different geometries in
 * different levels and seeds: the first is the (seed + level)-th.
 */
export async function runHistoryCheck(
  spec: CheckSpec,
  geometries: readonly Geometry[],
  deadline: Deadline,
  context: CheckContext,
): Promise<CheckTally> {
  const tally = newTally();
  const offset = (context.seed + levels.indexOf(spec.level)) % geometries.length;
  for (let turn = 0; turn < geometries.length; turn++) {
    const geometry = geometries[(offset + turn) % geometries.length]!;
    if (context.interrupted()) break;
    if (deadline.passed() || !deadline.fits(context.rate.estimateMs(historyStepsEstimate))) {
      tally.cutByBudget = true;
      tally.cases.push(skippedCase(geometry));
      continue;
    }
    if ((await fuzzCase(spec, geometry, { numRuns: 1 }, deadline.remainingMs(), context, tally)) && !context.keepGoing)
      return tally;
  }
  return tally;
}

/** `--path`: one fast-check counterexample replayed against the adapter (and shrunk on if it still fails). */
export async function replayFuzzPath(
  spec: CheckSpec,
  geometry: Geometry,
  path: string,
  context: CheckContext,
): Promise<CheckTally> {
  const tally = newTally();
  tally.geometries.push(geometry);
  context.progress(spec.id, `${describeGeometry(geometry)}: path ${path}`);
  const started = performance.now();
  const result = await runFuzz({
    ...fuzzOptionsFor(spec, geometry, context),
    path,
    shrinkBudgetMs: context.runDeadline.remainingMs(),
  });
  recordFuzzCase(spec, geometry, result, result.covered, performance.now() - started, context, tally);
  return tally;
}
