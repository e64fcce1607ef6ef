// The checks the budget bounds, each over the run's geometries: path tests of
// the statechart mapped onto each volume, fast-check sequences and long
// histories (harness/commandSequences.ts), and the failpoint sweep
// (harness/failpointSweep.ts). Each geometry gets an equal share of what the
// check has left; a check stops between units at its deadline.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Geometry, Op } from '../../model/types.ts';
import type { SutOp } from '../sut.ts';
import { runFuzz } from '../commandSequences.ts';
import type { FuzzOptions, FuzzResult } from '../commandSequences.ts';
import { runFailpointSweep, situations } from '../failpointSweep.ts';
import { describeGeometry } from '../geometry.ts';
import { runPaths, shortestPaths } from '../pathTests.ts';
import type { PathOptions } from '../pathTests.ts';
import { scenarioTrace } from '../scenario.ts';
import { Deadline, share, shrinkBudgetMs } from './budget.ts';
import { countUnit, newTally } from './context.ts';
import type { CheckContext, CheckTally } from './context.ts';
import { conformPathCommand, fromFuzz, fromScenario, replayCommand } from './failure.ts';
import { levels } from './plan.ts';
import type { CheckSpec } from './plan.ts';

/** Operations and completed cycles since open that a long history has at least (issue 11, item 4). */
export const historyMin = { operations: 300, cycles: 10 } as const;
/** Steps a long history is expected to take (its operations, the transfers of its cycles, its reads): for the estimate. */
export const historyStepsEstimate = 500;
/** Commands of a fast-check sequence at most. */
export const sequenceCommandsMax = 40;

/** A geometry's deadline: an equal share of what the check has left, no later than the check's own. */
function geometryDeadline(check: Deadline, geometriesLeft: number): Deadline {
  const now = performance.now();
  return new Deadline(Math.min(check.atMs, now + share(check.remainingMs(), 1, geometriesLeft)));
}

function fileSafe(text: string): string {
  return text
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
}

function geometryDir(context: CheckContext, spec: CheckSpec, geometry: Geometry): string {
  return join(context.failuresDir, `conform-${fileSafe(spec.id)}-${geometry.regions}x${geometry.regionSize}`);
}

// ------------------------------------------------------------ path tests

/** The model's regions for path tests: two (one with --quick), mapped onto each volume. */
export function pathModelRegions(quick: boolean): number {
  return quick ? 1 : 2;
}

/**
 * Path tests on every geometry. Geometry g of G starts at path ⌊g·P/G⌋ and goes
 * round, so that a budget too short for every path on every geometry still runs
 * different paths on different geometries.
 */
export async function runPathCheck(
  spec: CheckSpec,
  geometries: readonly Geometry[],
  deadline: Deadline,
  context: CheckContext,
): Promise<CheckTally> {
  const tally = newTally();
  if (deadline.passed()) {
    tally.cutByBudget = true;
    return tally;
  }
  // The model's regions, no more than the volume has; the paths of each model once.
  const pathsByRegions = new Map<number, Op[][]>();
  const modelOf = (geometry: Geometry): PathOptions => ({
    regions: Math.min(pathModelRegions(context.quick), geometry.regions),
    values: 1,
    crash: spec.crashBetween,
    regionSize: 512,
  });
  let total = 0;
  let planned = 0;
  for (const [index, geometry] of geometries.entries()) {
    if (context.interrupted() || deadline.passed()) {
      tally.cutByBudget ||= !context.interrupted();
      break;
    }
    const mine = geometryDeadline(deadline, geometries.length - index);
    const model = modelOf(geometry);
    let paths = pathsByRegions.get(model.regions);
    if (paths === undefined) {
      paths = shortestPaths(model);
      pathsByRegions.set(model.regions, paths);
    }
    planned += paths.length;
    const offset = Math.floor((index * paths.length) / geometries.length);
    const options: PathOptions = { ...model, regionSize: geometry.regionSize, volume: geometry, seed: context.seed };
    for (let turn = 0; turn < paths.length; turn++) {
      const pathIndex = (offset + turn) % paths.length;
      const path = paths[pathIndex]!;
      if (context.interrupted()) break;
      if (mine.passed() || !mine.fits(context.rate.estimateMs(path.length + 2))) {
        tally.cutByBudget = true;
        break;
      }
      const name = `path ${pathIndex + 1} (N=${model.regions}) on ${describeGeometry(geometry)}`;
      context.progress(spec.id, `${describeGeometry(geometry)}: path ${turn + 1}/${paths.length}`);
      const started = performance.now();
      const result = await runPaths([path], options, () => context.sut);
      const ms = performance.now() - started;
      const crashes = path.filter((op: Op) => op.type === 'crash').length;
      countUnit(context, tally, { runs: 1, steps: result.steps, crashPoints: crashes, covered: result.covered, ms });
      total++;
      if (!tally.geometries.includes(geometry)) tally.geometries.push(geometry);
      const failure =
        result.failure === null ? null : savePathFailure(spec, geometry, pathIndex, result.failure.result, context);
      tally.cases.push({
        name,
        geometry: describeGeometry(geometry),
        runs: 1,
        steps: result.steps,
        seconds: ms / 1000,
        failure,
        skipped: null,
      });
      if (failure !== null && !context.keepGoing) return tally;
    }
  }
  if (total < planned || tally.geometries.length < geometries.length) tally.cutByBudget ||= !context.interrupted();
  return tally;
}

function savePathFailure(
  spec: CheckSpec,
  geometry: Geometry,
  pathIndex: number,
  scenario: NonNullable<Awaited<ReturnType<typeof runPaths>>['failure']>['result'],
  context: CheckContext,
) {
  const failure = scenario.failure!;
  mkdirSync(context.failuresDir, { recursive: true });
  const file = join(
    context.failuresDir,
    `conform-${fileSafe(spec.id)}-${geometry.regions}x${geometry.regionSize}-path-${pathIndex + 1}.jsonl`,
  );
  writeFileSync(
    file,
    scenarioTrace(
      geometry,
      scenario.records,
      `conformance path test ${pathIndex + 1} (${spec.id}) on ${describeGeometry(geometry)}`,
      [
        `A path test of the statechart that ${context.sut.name} fails: ${failure.message.split('\n')[0]}`,
        `replay: ${replayCommand(file, context.command)}`,
      ],
      context.seed,
    ),
  );
  return fromScenario(`step ${failure.stepIndex + 1}`, failure.message, failure.differences, file, context.command);
}

// ------------------------------------------------------------ fast-check and long histories

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
  const ms = performance.now() - started;
  countUnit(context, tally, {
    runs: result.runs,
    steps: result.steps,
    crashPoints: result.crashStates,
    covered: [],
    ms,
  });
  for (const [id, times] of result.hits) context.hits.set(id, (context.hits.get(id) ?? 0) + times);
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
  const ms = performance.now() - started;
  countUnit(context, tally, {
    runs: result.runs,
    steps: result.steps,
    crashPoints: result.crashStates,
    covered: result.covered,
    ms,
  });
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
  return tally;
}

// ------------------------------------------------------------ the failpoint sweep

/**
 * The sweep's situations, the operation kinds taken in turn (a write, a
 * startCycle, a transfer, a completeCycle, a write, ...), so that any few
 * consecutive ones crash inside different operations.
 */
export function sweepOrder(): string[] {
  const probe = { region: 0, other: 1 };
  const write = (region: number): SutOp => ({ type: 'write', region, data: new Uint8Array(0) });
  const byKind = new Map<string, string[]>();
  for (const situation of situations) {
    const kind = situation.operation(probe, write).type;
    byKind.set(kind, [...(byKind.get(kind) ?? []), situation.name]);
  }
  const queues = [...byKind.values()];
  const order: string[] = [];
  for (let round = 0; order.length < situations.length; round++) {
    for (const queue of queues) if (round < queue.length) order.push(queue[round]!);
  }
  return order;
}

/**
 * The failpoint sweep, situation by situation (harness/failpointSweep.ts), each
 * swept whole on one geometry, while its time lasts. The first situation and
 * its geometry change with the seed and the level, so that a budget too short
 * for every situation still sweeps different ones in different runs and levels,
 * and every situation lands on several geometries over runs.
 */
export async function runSweepCheck(
  spec: CheckSpec,
  geometries: readonly Geometry[],
  deadline: Deadline,
  context: CheckContext,
): Promise<CheckTally> {
  const tally = newTally();
  const names = sweepOrder();
  const offset = context.seed + levels.indexOf(spec.level);
  for (let turn = 0; turn < names.length; turn++) {
    const name = names[(offset + turn) % names.length]!;
    const geometry = geometries[(offset + turn) % geometries.length]!;
    if (context.interrupted()) break;
    if (deadline.passed()) {
      tally.cutByBudget = true;
      tally.cases.push({
        name,
        geometry: null,
        runs: 0,
        steps: 0,
        seconds: 0,
        failure: null,
        skipped: 'not run: cut by the time budget',
      });
      continue;
    }
    let cut = false;
    const started = performance.now();
    const result = await runFailpointSweep({
      geometry,
      modes: spec.crashModes,
      seed: context.seed,
      failuresDir: context.failuresDir,
      makeSut: () => context.sut,
      situationNames: [name],
      shouldStop: () => {
        cut = context.interrupted() || deadline.passed() || !deadline.fits(context.rate.estimateMs(12));
        return cut;
      },
      onProgress: (text) =>
        context.progress(spec.id, `${describeGeometry(geometry)}: ${text.replace(/^failpoint sweep: /, '')}`),
    });
    const ms = performance.now() - started;
    countUnit(context, tally, {
      runs: result.runs,
      steps: result.steps,
      crashPoints: result.crashPoints,
      covered: result.covered,
      ms,
    });
    if (cut && !context.interrupted()) tally.cutByBudget = true;
    if (result.runs === 0) continue;
    if (!tally.geometries.includes(geometry)) tally.geometries.push(geometry);
    const failure =
      result.failure === null
        ? null
        : fromScenario(
            null,
            result.failure.message,
            result.failure.differences,
            result.failure.tracePath,
            context.command,
          );
    tally.cases.push({
      name,
      geometry: describeGeometry(geometry),
      runs: result.runs,
      steps: result.steps,
      seconds: ms / 1000,
      failure,
      skipped: null,
    });
    if (failure !== null && !context.keepGoing) return tally;
  }
  return tally;
}
