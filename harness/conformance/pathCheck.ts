// The path tests check of conform: the statechart's shortest paths, on the
// model's few regions, mapped onto each volume of the run (harness/pathTests.ts).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Geometry, Op } from '../../model/types.ts';
import { describeGeometry } from '../geometry.ts';
import { runPaths, shortestPaths } from '../pathTests.ts';
import type { PathOptions } from '../pathTests.ts';
import { scenarioTrace } from '../scenario.ts';
import type { Deadline } from './budget.ts';
import { countUnit, newTally } from './context.ts';
import type { CheckContext, CheckTally } from './context.ts';
import { fromScenario, replayCommand } from './failure.ts';
import type { CheckSpec } from './plan.ts';
import { geometryDeadline } from './geometryUnits.ts';
import { fileSafe } from '../fileSafe.ts';

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
