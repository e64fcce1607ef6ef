// The checks that run whole: the traces (one case each) and the protocol's own
// rules (harness/protocolChecks.ts, one case each). They are cheap and run first,
// so only a run whose whole budget is spent on them cuts them (between cases);
// with --quick they always run whole (docs/conformance.md, the budget rule).

import { relative } from 'node:path';
import { runProtocolChecks } from '../protocolChecks.ts';
import { replayTrace } from '../replay.ts';
import type { Trace } from '../trace/trace.ts';
import type { Deadline } from './budget.ts';
import { countUnit, newTally } from './context.ts';
import type { CheckContext, CheckTally } from './context.ts';
import { fromProtocolCheck, fromReplay } from './failure.ts';
import type { CheckSpec } from './plan.ts';

export interface TraceEntry {
  readonly trace: Trace;
  /** Stable: the path under the traces folder, or the file as given to --trace. */
  readonly name: string;
}

export function traceEntry(trace: Trace, tracesDir: string | null): TraceEntry {
  const inside = tracesDir === null ? null : relative(tracesDir, trace.file);
  return { trace, name: inside !== null && !inside.startsWith('..') ? inside : trace.file };
}

const notRun = 'not run: an earlier case failed (--keep-going runs every one)';

export async function runTraceCheck(
  spec: CheckSpec,
  entries: readonly TraceEntry[],
  deadline: Deadline | null,
  context: CheckContext,
): Promise<CheckTally> {
  const tally = newTally();
  let stopped = false;
  for (const { trace, name } of entries) {
    const geometry = `${trace.header.regions} x ${trace.header.regionSize} B`;
    const outOfTime = deadline?.passed() === true;
    if (stopped || context.interrupted() || outOfTime) {
      tally.cutByBudget ||= outOfTime && !stopped && !context.interrupted();
      tally.cases.push({
        name,
        geometry,
        runs: 0,
        steps: 0,
        seconds: 0,
        failure: null,
        skipped: context.interrupted()
          ? 'not run: interrupted'
          : stopped
            ? notRun
            : 'not run: the time budget was spent',
      });
      continue;
    }
    context.progress(spec.id, name);
    const started = performance.now();
    const result = await replayTrace(trace, context.sut);
    const ms = performance.now() - started;
    countUnit(context, tally, {
      runs: 1,
      steps: result.stats.steps,
      crashPoints: result.stats.crashStates,
      covered: result.covered,
      ms,
    });
    const failure = result.failure === null ? null : fromReplay(result.failure, context.command);
    tally.cases.push({
      name,
      geometry,
      runs: 1,
      steps: result.stats.steps,
      seconds: ms / 1000,
      failure,
      skipped: null,
    });
    if (failure !== null && !context.keepGoing) stopped = true;
  }
  return tally;
}

export async function runProtocolCheck(
  spec: CheckSpec,
  deadline: Deadline | null,
  context: CheckContext,
): Promise<CheckTally> {
  const tally = newTally();
  if (deadline?.passed() === true) {
    tally.cutByBudget = true;
    return tally;
  }
  context.progress(spec.id, 'requests the protocol defines');
  const results = await runProtocolChecks({
    command: context.command,
    requestTimeoutMs: context.requestTimeoutMs,
    ...(context.transcript === undefined ? {} : { transcript: context.transcript }),
    shouldStop: () => {
      const outOfTime = deadline?.passed() === true;
      tally.cutByBudget ||= outOfTime;
      return context.interrupted() || outOfTime;
    },
  });
  for (const result of results) {
    tally.runs++;
    tally.cases.push({
      name: result.name,
      geometry: null,
      runs: 1,
      steps: 0,
      seconds: result.seconds,
      failure: result.passed ? null : fromProtocolCheck(result.name, result.message ?? 'failed', context.command),
      skipped: null,
    });
  }
  return tally;
}
