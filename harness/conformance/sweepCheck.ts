import type { Geometry } from '../../model/types.ts';
import type { SutOp } from '../sut/systemUnderTest.ts';
import { runFailpointSweep, situations } from '../failpointSweep.ts';
import { describeGeometry } from '../geometry.ts';
import type { Deadline } from './budget.ts';
import { countUnit, newTally } from './context.ts';
import type { CheckContext, CheckTally } from './context.ts';
import { fromScenario } from './failure.ts';
import { levels } from './plan.ts';
import type { CheckSpec } from './plan.ts';

/**
 * The sweep's situations, the operation kinds taken in turn (a write, a
 * startCycle, a transfer, a completeCycle, a write, ...), so that any few
 * consecutive ones crash inside different operations; only those of `kinds` when given.
 */
export function sweepOrder(kinds?: readonly SutOp['type'][]): string[] {
  const probe = { region: 0, other: 1 };
  const write = (region: number): SutOp => ({ type: 'write', region, data: new Uint8Array(0) });
  const byKind = new Map<string, string[]>();
  for (const situation of situations) {
    const kind = situation.operation(probe, write).type;
    if (kinds !== undefined && !kinds.includes(kind)) continue;
    byKind.set(kind, [...(byKind.get(kind) ?? []), situation.name]);
  }
  const queues = [...byKind.values()];
  const order: string[] = [];
  const count = queues.reduce((sum, queue) => sum + queue.length, 0);
  for (let round = 0; order.length < count; round++) {
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
  // The consistent image changes only at completion and must not change at a transfer: those are swept.
  const names = spec.level === 'consistent' ? sweepOrder(['transfer', 'completeCycle']) : sweepOrder();
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
    const failed = await sweepSituation(spec, name, geometry, deadline, context, tally);
    if (failed && !context.keepGoing) return tally;
  }
  return tally;
}

/** One situation swept whole on one geometry, counted into the tally as a case; true when it failed. */
async function sweepSituation(
  spec: CheckSpec,
  name: string,
  geometry: Geometry,
  deadline: Deadline,
  context: CheckContext,
  tally: CheckTally,
): Promise<boolean> {
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
  if (result.runs === 0) return false;
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
  return failure !== null;
}
