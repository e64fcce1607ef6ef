// 4. The checker's own speed: fast-check steps per second on the reference
// implementation over the crash layer (runFuzz with a time budget), crash states
// checked per second (exploreCrashes with its defaults), explorer states per second
// (explore with crashes), and conformance steps per second through the adapter
// protocol (checkerConformance.ts: the traces replayed through AdapterSut on
// `node bin/cowmap.js adapter`, and in process on ReferenceSut for comparison).
// A failure found by any of them is a failed check (the bench exits 1).

import { join } from 'node:path';
import { fuzzDefaults } from '../harness/fuzz/options.ts';
import { runFuzz } from '../harness/fuzz/run.ts';
import { exploreCrashes } from '../harness/exploration/explorer.ts';
import { explorationDefaults } from '../harness/exploration/options.ts';
import { statesPerSecond } from '../harness/exploration/report.ts';
import { ReferenceSut } from '../harness/sut/referenceSut.ts';
import { explore } from '../model/explorer.ts';
import { measureConformance } from './checkerConformance.ts';
import { Checks, type Figure, type Log, type SectionResult } from './report.ts';
import { emptySeries, sum } from './series.ts';
import { secondsSince, summarize } from './stats.ts';

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

/** A part of the section: its figure and what goes into results.json. */
interface Measured {
  readonly figure: Figure;
  readonly data: Record<string, unknown>;
}

/** fast-check command sequences on the reference implementation over CrashStorage. */
async function measureFuzz(config: CheckerConfig, checks: Checks, log: Log): Promise<Measured> {
  const fuzz = emptySeries('stepsPerSecond', 'steps', 'runs', 'crashStates', 'seconds');
  const failures: string[] = [];
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
    if (result.failure !== null) failures.push(`seed ${result.seed}: ${result.failure.message.split('\n')[0]}`);
    fuzz.stepsPerSecond.push(result.steps / result.seconds);
    fuzz.steps.push(result.steps);
    fuzz.runs.push(result.runs);
    fuzz.crashStates.push(result.crashStates);
    fuzz.seconds.push(result.seconds);
    log(
      `  fuzz repetition ${repetition + 1}/${config.fuzzRepetitions}: ${result.steps} steps, ${result.runs} runs ` +
        `in ${result.seconds.toFixed(1)} s = ${(result.steps / result.seconds).toFixed(0)} steps/s`,
    );
  }
  checks.expectAll(
    'checker: fast-check finds no failure in the reference implementation',
    failures,
    `${sum(fuzz.runs)} sequences`,
  );
  const figure: Figure = {
    key: 'fuzzStepsPerSecond',
    label:
      'fast-check steps on the reference implementation + crash layer ' +
      `(runFuzz, ${config.fuzzBudgetMs / 1000} s budget)`,
    unit: 'steps/s',
    summary: summarize(fuzz.stepsPerSecond),
    detail:
      `median ${summarize(fuzz.steps).median.toFixed(0)} steps, ` +
      `${summarize(fuzz.runs).median.toFixed(0)} sequences per run`,
  };
  return { figure, data: fuzz };
}

/** Crash exploration with its defaults. */
async function measureCrashes(config: CheckerConfig, checks: Checks, log: Log): Promise<Measured> {
  const crashes = emptySeries('statesPerSecond', 'crashStates', 'runs', 'seconds');
  const failures: string[] = [];
  const { length, regions, values } = explorationDefaults;
  for (let repetition = 0; repetition < config.crashesRepetitions; repetition++) {
    const result = await exploreCrashes({ length, regions, values, failuresDir: null });
    if (result.failure !== null) failures.push(result.failure.description);
    crashes.statesPerSecond.push(statesPerSecond(result.stats));
    crashes.crashStates.push(result.stats.crashStates);
    crashes.runs.push(result.stats.runs);
    crashes.seconds.push(result.stats.seconds);
    log(
      `  crash exploration repetition ${repetition + 1}/${config.crashesRepetitions}: ` +
        `${result.stats.crashStates} states in ${result.stats.seconds.toFixed(2)} s = ` +
        `${statesPerSecond(result.stats)} states/s`,
    );
  }
  checks.expectAll(
    'checker: every explored crash state recovers to an allowed state',
    failures,
    `${crashes.crashStates[0]} crash states per exploration`,
  );
  const figure: Figure = {
    key: 'crashStatesPerSecond',
    label: `crash states checked (exploreCrashes defaults: length ${length}, regions ${regions}, values ${values})`,
    unit: 'states/s',
    summary: summarize(crashes.statesPerSecond),
    detail:
      `${crashes.crashStates[0]} states, ${crashes.runs[0]} crash runs ` +
      `in ${summarize(crashes.seconds).median.toFixed(2)} s`,
  };
  return { figure, data: crashes };
}

/** The model explorer with crashes. */
function measureExplorer(config: CheckerConfig, checks: Checks, log: Log): Measured {
  const explorer = emptySeries('statesPerSecond', 'states', 'transitions', 'seconds');
  const failures: string[] = [];
  const { explorerRegions: regions, explorerValues: values } = config;
  for (let repetition = 0; repetition < config.explorerRepetitions; repetition++) {
    const started = process.hrtime.bigint();
    const result = explore({ regions, values, crash: true, statesMax: explorerStatesMax });
    const seconds = secondsSince(started);
    if (result.violation !== null) failures.push(result.violation.violations.map((v) => v.message).join('; '));
    if (result.stoppedEarly) failures.push(`stopped early at ${result.states} states`);
    explorer.statesPerSecond.push(result.states / seconds);
    explorer.states.push(result.states);
    explorer.transitions.push(result.transitions);
    explorer.seconds.push(seconds);
    log(
      `  explorer repetition ${repetition + 1}/${config.explorerRepetitions}: ${result.states} states ` +
        `in ${seconds.toFixed(1)} s = ${(result.states / seconds).toFixed(0)} states/s`,
    );
  }
  checks.expectAll(
    'checker: the explorer finds no violation and covers the state space',
    failures,
    `${explorer.states[0]} states`,
  );
  const figure: Figure = {
    key: 'explorerStatesPerSecond',
    label: `explorer states (regions ${regions}, values ${values}, crash)`,
    unit: 'states/s',
    summary: summarize(explorer.statesPerSecond),
    detail:
      `${explorer.states[0]} states, ${explorer.transitions[0]} transitions ` +
      `in ${summarize(explorer.seconds).median.toFixed(1)} s`,
  };
  return { figure, data: { regions, values, ...explorer } };
}

function checkerNotes(config: CheckerConfig, traceCount: number): string[] {
  const { seed, fuzzRepetitions } = config;
  return [
    `Checker: fuzz ${fuzzRepetitions} x ${config.fuzzBudgetMs / 1000} s (seeds ${seed}..${seed + fuzzRepetitions - 1}, ` +
      `regions ${fuzzDefaults.regions}, labels ${fuzzDefaults.labels}, commands-max ${fuzzDefaults.commandsMax}, ` +
      `every crash mode); crash exploration ${config.crashesRepetitions} x; explorer ${config.explorerRepetitions} x ` +
      `regions ${config.explorerRegions} values ${config.explorerValues} with crashes; ` +
      `conformance ${config.conformanceRepetitions} x ${traceCount} traces. ` +
      'A "step" is one oracle step (an operation run on the model and the implementation, and checked).',
  ];
}

export async function benchChecker(config: CheckerConfig, log: Log): Promise<SectionResult> {
  const checks = new Checks();
  const fuzz = await measureFuzz(config, checks, log);
  const crashes = await measureCrashes(config, checks, log);
  const explorer = measureExplorer(config, checks, log);
  const conformance = await measureConformance(config, checks, log);
  return {
    section: 'checker',
    figures: [fuzz.figure, crashes.figure, explorer.figure, ...conformance.figures],
    checks: checks.list,
    notes: checkerNotes(config, conformance.traceCount),
    data: { fuzz: fuzz.data, crashes: crashes.data, explorer: explorer.data, conformance: conformance.data },
  };
}
