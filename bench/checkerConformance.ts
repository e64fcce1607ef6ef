// The checker section's conformance figures (checker.ts): the traces replayed
// through the adapter protocol (AdapterSut on `node bin/cowmap.js adapter`, process
// starts included, and without the first start of each trace), and the same traces
// in process on ReferenceSut, the two alternating which goes first.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdapterSut } from '../harness/adapter/adapterSut.ts';
import { ReferenceSut } from '../harness/sut/referenceSut.ts';
import { replayTrace } from '../harness/replay.ts';
import type { SystemUnderTest } from '../harness/sut/systemUnderTest.ts';
import { readTrace } from '../harness/trace/reader.ts';
import type { Trace } from '../harness/trace/trace.ts';
import type { Checks, Figure, Log } from './report.ts';
import { runInTurn } from './rotation.ts';
import { emptySeries } from './series.ts';
import { secondsSince, summarize } from './stats.ts';

export interface ConformanceConfig {
  readonly repoRoot: string;
  readonly conformanceRepetitions: number;
  readonly traceFiles: readonly string[];
}

interface ReplayTotals {
  steps: number;
  seconds: number;
  /** The first process start of each trace (crash branches start more processes inside the replay). */
  startSeconds: number;
}

/** Every trace replayed on a fresh system of `makeSut`, its failures added to `failures`. */
async function replayAll(
  traces: readonly Trace[],
  makeSut: () => SystemUnderTest,
  startFirst: boolean,
  failures: string[],
): Promise<ReplayTotals> {
  const totals: ReplayTotals = { steps: 0, seconds: 0, startSeconds: 0 };
  for (const trace of traces) {
    const sut = makeSut();
    const started = process.hrtime.bigint();
    if (startFirst && sut instanceof AdapterSut) await sut.start();
    totals.startSeconds += secondsSince(started);
    const result = await replayTrace(trace, sut);
    totals.seconds += secondsSince(started);
    totals.steps += result.stats.steps;
    if (result.failure !== null)
      failures.push(`${trace.file} on ${sut.name}: ${result.failure.message.split('\n')[0]}`);
  }
  return totals;
}

function conformanceFigures(series: ReturnType<typeof emptyConformanceSeries>, traceCount: number): Figure[] {
  return [
    {
      key: 'conformanceStepsPerSecond',
      label:
        `conformance steps through the adapter (${traceCount} traces, node bin/cowmap.js adapter, ` +
        'process starts included)',
      unit: 'steps/s',
      summary: summarize(series.adapterStepsPerSecond),
      detail:
        `${series.steps[0]} steps in ${summarize(series.adapterSeconds).median.toFixed(1)} s, ` +
        `${summarize(series.adapterStartSeconds).median.toFixed(1)} s of it process starts`,
    },
    {
      key: 'conformanceStepsPerSecondAfterStart',
      label: 'conformance steps through the adapter, first process start per trace excluded',
      unit: 'steps/s',
      summary: summarize(series.adapterStepsPerSecondAfterStart),
    },
    {
      key: 'replayInProcessStepsPerSecond',
      label: 'the same traces in process (ReferenceSut, no adapter)',
      unit: 'steps/s',
      summary: summarize(series.inProcessStepsPerSecond),
    },
  ];
}

function emptyConformanceSeries() {
  return emptySeries(
    'adapterStepsPerSecond',
    'adapterStepsPerSecondAfterStart',
    'inProcessStepsPerSecond',
    'steps',
    'adapterSeconds',
    'adapterStartSeconds',
    'inProcessSeconds',
  );
}

export async function measureConformance(config: ConformanceConfig, checks: Checks, log: Log) {
  const traces: Trace[] = config.traceFiles.map((file) =>
    readTrace(readFileSync(join(config.repoRoot, file), 'utf8'), file),
  );
  const adapterCommand = [process.execPath, join(config.repoRoot, 'bin', 'cowmap.js'), 'adapter'];
  const series = emptyConformanceSeries();
  const failures: string[] = [];
  for (let repetition = 0; repetition < config.conformanceRepetitions; repetition++) {
    let adapter: ReplayTotals = { steps: 0, seconds: 0, startSeconds: 0 };
    let inProcess: ReplayTotals = { steps: 0, seconds: 0, startSeconds: 0 };
    const throughAdapter = async () => {
      adapter = await replayAll(traces, () => new AdapterSut(adapterCommand, { cwd: config.repoRoot }), true, failures);
    };
    const inThisProcess = async () => {
      inProcess = await replayAll(traces, () => new ReferenceSut(), false, failures);
    };
    await runInTurn([throughAdapter, inThisProcess], repetition);
    series.adapterStepsPerSecond.push(adapter.steps / adapter.seconds);
    series.adapterStepsPerSecondAfterStart.push(adapter.steps / (adapter.seconds - adapter.startSeconds));
    series.inProcessStepsPerSecond.push(inProcess.steps / inProcess.seconds);
    series.steps.push(adapter.steps);
    series.adapterSeconds.push(adapter.seconds);
    series.adapterStartSeconds.push(adapter.startSeconds);
    series.inProcessSeconds.push(inProcess.seconds);
    log(
      `  conformance repetition ${repetition + 1}/${config.conformanceRepetitions}: ${adapter.steps} steps of ` +
        `${traces.length} traces through the adapter in ${adapter.seconds.toFixed(1)} s ` +
        `(${adapter.startSeconds.toFixed(1)} s of it the first process start per trace); ` +
        `in process ${inProcess.seconds.toFixed(1)} s`,
    );
  }
  checks.expectAll(
    'checker: every trace passes through the adapter and in process',
    failures,
    `${traces.length} traces`,
  );
  return {
    traceCount: traces.length,
    figures: conformanceFigures(series, traces.length),
    data: { traces: traces.length, adapterCommand: 'node bin/cowmap.js adapter', ...series },
  };
}
