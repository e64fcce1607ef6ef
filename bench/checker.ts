// 4. The checker's own speed: fast-check steps per second on the reference
// implementation over the crash layer (runFuzz with a time budget), crash states
// checked per second (exploreCrashes with its defaults), explorer states per second
// (explore with crashes), and conformance steps per second through the adapter
// protocol (the traces replayed through AdapterSut on `node bin/cowmap.js adapter`),
// with the same traces replayed in process on ReferenceSut for comparison.
// A failure found by any of them is a failed check (the bench exits 1).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { explore } from '../model/explorer.ts';
import { AdapterSut } from '../harness/adapterSut.ts';
import { fuzzDefaults, runFuzz } from '../harness/commandSequences.ts';
import { exploreCrashes, explorationDefaults, statesPerSecond } from '../harness/crashExploration.ts';
import { ReferenceSut } from '../harness/referenceSut.ts';
import { replayTrace } from '../harness/replay.ts';
import type { SystemUnderTest } from '../harness/sut.ts';
import { readTrace } from '../harness/trace/reader.ts';
import type { Trace } from '../harness/trace/trace.ts';
import { Checks, type Figure, type Log, type SectionResult } from './report.ts';
import { summarize } from './stats.ts';

export interface CheckerConfig {
  readonly root: string;
  readonly repoRoot: string;
  readonly fuzzBudgetMs: number;
  readonly fuzzRepetitions: number;
  readonly crashesRepetitions: number;
  readonly explorerRegions: number;
  readonly explorerValues: number;
  readonly explorerRepetitions: number;
  readonly conformanceRepetitions: number;
  readonly traceFiles: readonly string[];
  readonly seed: number;
}

/** The explorer's bound on states, as `cowmap explore` has by default. */
const explorerStatesMax = 5_000_000;

function elapsedSeconds(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

export async function benchChecker(config: CheckerConfig, log: Log): Promise<SectionResult> {
  const checks = new Checks();
  const figures: Figure[] = [];
  const data: Record<string, unknown> = {};

  // fast-check command sequences on the reference implementation over CrashStorage.
  const fuzz = {
    stepsPerSecond: [] as number[],
    steps: [] as number[],
    runs: [] as number[],
    crashStates: [] as number[],
    seconds: [] as number[],
  };
  const fuzzFailures: string[] = [];
  for (let repetition = 0; repetition < config.fuzzRepetitions; repetition++) {
    const result = await runFuzz({
      seed: config.seed + repetition,
      timeBudgetMs: config.fuzzBudgetMs,
      regions: fuzzDefaults.regions,
      labels: fuzzDefaults.labels,
      commandsMax: fuzzDefaults.commandsMax,
      makeSut: () => new ReferenceSut(),
      failuresDir: join(config.root, 'fuzz-failures'),
    });
    if (result.failure !== null) fuzzFailures.push(`seed ${result.seed}: ${result.failure.message.split('\n')[0]}`);
    fuzz.stepsPerSecond.push(result.steps / result.seconds);
    fuzz.steps.push(result.steps);
    fuzz.runs.push(result.runs);
    fuzz.crashStates.push(result.crashStates);
    fuzz.seconds.push(result.seconds);
    log(
      `  fuzz repetition ${repetition + 1}/${config.fuzzRepetitions}: ${result.steps} steps, ${result.runs} runs in ${result.seconds.toFixed(1)} s = ${(result.steps / result.seconds).toFixed(0)} steps/s`,
    );
  }
  checks.expectAll(
    'checker: fast-check finds no failure in the reference implementation',
    fuzzFailures,
    `${fuzz.runs.reduce((a, b) => a + b, 0)} sequences`,
  );
  figures.push({
    key: 'fuzzStepsPerSecond',
    label: `fast-check steps on the reference implementation + crash layer (runFuzz, ${config.fuzzBudgetMs / 1000} s budget)`,
    unit: 'steps/s',
    summary: summarize(fuzz.stepsPerSecond),
    detail: `median ${summarize(fuzz.steps).median.toFixed(0)} steps, ${summarize(fuzz.runs).median.toFixed(0)} sequences per run`,
  });
  data.fuzz = fuzz;

  // Crash exploration with its defaults.
  const crashes = {
    statesPerSecond: [] as number[],
    crashStates: [] as number[],
    runs: [] as number[],
    seconds: [] as number[],
  };
  const crashFailures: string[] = [];
  for (let repetition = 0; repetition < config.crashesRepetitions; repetition++) {
    const result = await exploreCrashes({
      length: explorationDefaults.length,
      regions: explorationDefaults.regions,
      values: explorationDefaults.values,
      failuresDir: null,
    });
    if (result.failure !== null) crashFailures.push(result.failure.description);
    crashes.statesPerSecond.push(statesPerSecond(result.stats));
    crashes.crashStates.push(result.stats.crashStates);
    crashes.runs.push(result.stats.runs);
    crashes.seconds.push(result.stats.seconds);
    log(
      `  crash exploration repetition ${repetition + 1}/${config.crashesRepetitions}: ${result.stats.crashStates} states in ${result.stats.seconds.toFixed(2)} s = ${statesPerSecond(result.stats)} states/s`,
    );
  }
  checks.expectAll(
    'checker: every explored crash state recovers to an allowed state',
    crashFailures,
    `${crashes.crashStates[0]} crash states per exploration`,
  );
  figures.push({
    key: 'crashStatesPerSecond',
    label: `crash states checked (exploreCrashes defaults: length ${explorationDefaults.length}, regions ${explorationDefaults.regions}, values ${explorationDefaults.values})`,
    unit: 'states/s',
    summary: summarize(crashes.statesPerSecond),
    detail: `${crashes.crashStates[0]} states, ${crashes.runs[0]} crash runs in ${summarize(crashes.seconds).median.toFixed(2)} s`,
  });
  data.crashes = crashes;

  // The model explorer with crashes.
  const explorer = {
    statesPerSecond: [] as number[],
    states: [] as number[],
    transitions: [] as number[],
    seconds: [] as number[],
  };
  const explorerFailures: string[] = [];
  for (let repetition = 0; repetition < config.explorerRepetitions; repetition++) {
    const started = process.hrtime.bigint();
    const result = explore({
      regions: config.explorerRegions,
      values: config.explorerValues,
      crash: true,
      statesMax: explorerStatesMax,
    });
    const seconds = elapsedSeconds(started);
    if (result.violation !== null) explorerFailures.push(result.violation.violations.map((v) => v.message).join('; '));
    if (result.stoppedEarly) explorerFailures.push(`stopped early at ${result.states} states`);
    explorer.statesPerSecond.push(result.states / seconds);
    explorer.states.push(result.states);
    explorer.transitions.push(result.transitions);
    explorer.seconds.push(seconds);
    log(
      `  explorer repetition ${repetition + 1}/${config.explorerRepetitions}: ${result.states} states in ${seconds.toFixed(1)} s = ${(result.states / seconds).toFixed(0)} states/s`,
    );
  }
  checks.expectAll(
    'checker: the explorer finds no violation and covers the state space',
    explorerFailures,
    `${explorer.states[0]} states`,
  );
  figures.push({
    key: 'explorerStatesPerSecond',
    label: `explorer states (regions ${config.explorerRegions}, values ${config.explorerValues}, crash)`,
    unit: 'states/s',
    summary: summarize(explorer.statesPerSecond),
    detail: `${explorer.states[0]} states, ${explorer.transitions[0]} transitions in ${summarize(explorer.seconds).median.toFixed(1)} s`,
  });
  data.explorer = { regions: config.explorerRegions, values: config.explorerValues, ...explorer };

  // Conformance: the traces through the adapter protocol, and in process for comparison.
  const traces: Trace[] = config.traceFiles.map((file) =>
    readTrace(readFileSync(join(config.repoRoot, file), 'utf8'), file),
  );
  const adapterCommand = [process.execPath, join(config.repoRoot, 'bin', 'cowmap.js'), 'adapter'];
  const conformance = {
    adapterStepsPerSecond: [] as number[],
    adapterStepsPerSecondAfterStart: [] as number[],
    inProcessStepsPerSecond: [] as number[],
    steps: [] as number[],
    adapterSeconds: [] as number[],
    adapterStartSeconds: [] as number[],
    inProcessSeconds: [] as number[],
  };
  const conformanceFailures: string[] = [];
  const replayAll = async (makeSut: () => SystemUnderTest, startFirst: boolean) => {
    let steps = 0;
    let seconds = 0;
    let startSeconds = 0;
    for (const trace of traces) {
      const sut = makeSut();
      const started = process.hrtime.bigint();
      // The first process start, timed apart (crash branches start more processes inside the replay).
      if (startFirst && sut instanceof AdapterSut) await sut.start();
      startSeconds += elapsedSeconds(started);
      const result = await replayTrace(trace, sut);
      seconds += elapsedSeconds(started);
      steps += result.stats.steps;
      if (result.failure !== null)
        conformanceFailures.push(`${trace.file} on ${sut.name}: ${result.failure.message.split('\n')[0]}`);
    }
    return { steps, seconds, startSeconds };
  };
  for (let repetition = 0; repetition < config.conformanceRepetitions; repetition++) {
    // Adapter and in-process replays alternate which goes first.
    const adapterFirst = repetition % 2 === 0;
    let adapter = { steps: 0, seconds: 0, startSeconds: 0 };
    let inProcess = { steps: 0, seconds: 0, startSeconds: 0 };
    if (adapterFirst) {
      adapter = await replayAll(() => new AdapterSut(adapterCommand, { cwd: config.repoRoot }), true);
      inProcess = await replayAll(() => new ReferenceSut(), false);
    } else {
      inProcess = await replayAll(() => new ReferenceSut(), false);
      adapter = await replayAll(() => new AdapterSut(adapterCommand, { cwd: config.repoRoot }), true);
    }
    conformance.adapterStepsPerSecond.push(adapter.steps / adapter.seconds);
    conformance.adapterStepsPerSecondAfterStart.push(adapter.steps / (adapter.seconds - adapter.startSeconds));
    conformance.inProcessStepsPerSecond.push(inProcess.steps / inProcess.seconds);
    conformance.steps.push(adapter.steps);
    conformance.adapterSeconds.push(adapter.seconds);
    conformance.adapterStartSeconds.push(adapter.startSeconds);
    conformance.inProcessSeconds.push(inProcess.seconds);
    log(
      `  conformance repetition ${repetition + 1}/${config.conformanceRepetitions}: ${adapter.steps} steps of ${traces.length} traces through the adapter in ${adapter.seconds.toFixed(1)} s ` +
        `(${adapter.startSeconds.toFixed(1)} s of it the first process start per trace); in process ${inProcess.seconds.toFixed(1)} s`,
    );
  }
  checks.expectAll(
    'checker: every trace passes through the adapter and in process',
    conformanceFailures,
    `${traces.length} traces`,
  );
  const adapterSummary = summarize(conformance.adapterStepsPerSecond);
  figures.push({
    key: 'conformanceStepsPerSecond',
    label: `conformance steps through the adapter (${traces.length} traces, node bin/cowmap.js adapter, process starts included)`,
    unit: 'steps/s',
    summary: adapterSummary,
    detail: `${conformance.steps[0]} steps in ${summarize(conformance.adapterSeconds).median.toFixed(1)} s, ${summarize(conformance.adapterStartSeconds).median.toFixed(1)} s of it process starts`,
  });
  figures.push({
    key: 'conformanceStepsPerSecondAfterStart',
    label: 'conformance steps through the adapter, first process start per trace excluded',
    unit: 'steps/s',
    summary: summarize(conformance.adapterStepsPerSecondAfterStart),
  });
  figures.push({
    key: 'replayInProcessStepsPerSecond',
    label: 'the same traces in process (ReferenceSut, no adapter)',
    unit: 'steps/s',
    summary: summarize(conformance.inProcessStepsPerSecond),
  });
  data.conformance = { traces: traces.length, adapterCommand: 'node bin/cowmap.js adapter', ...conformance };

  return {
    section: 'checker',
    figures,
    checks: checks.list,
    notes: [
      `Checker: fuzz ${config.fuzzRepetitions} x ${config.fuzzBudgetMs / 1000} s (seeds ${config.seed}..${config.seed + config.fuzzRepetitions - 1}, regions ${fuzzDefaults.regions}, labels ${fuzzDefaults.labels}, commands-max ${fuzzDefaults.commandsMax}, every crash mode); ` +
        `crash exploration ${config.crashesRepetitions} x; explorer ${config.explorerRepetitions} x regions ${config.explorerRegions} values ${config.explorerValues} with crashes; conformance ${config.conformanceRepetitions} x ${traces.length} traces. ` +
        `A "step" is one oracle step (an operation run on the model and the implementation, and checked).`,
    ],
    data,
  };
}
