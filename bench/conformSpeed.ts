// 6. The conformance suite's speed through the adapter, against the speed of the
// same implementation driven by the plainest client there is (docs/bench.md,
// "Conformance speed against a plain driver").
//
// The baseline is a plain sequential driver (plainDriver.ts): it spawns the
// adapter, says hello, then loops "one operation, then state" with the op mix of
// the fast-check sequences without crashes (writes of full-region bytes,
// transfers, swaps, completions, reads, arguments out of range), in sequences of
// their lengths on fresh volumes, reading each answer before it sends the next
// request and checking nothing. Ours is cowmap's checked run through the same
// adapter command (checkedRun.ts): runFuzz over one AdapterSut kept running (a
// fresh volume per sequence, no crashes), every step run on the model beside it,
// states compared and invariants checked. Both on the same geometry, each side on
// one process started before the timing, in short slices of the same length that
// alternate (driver first, then ours first), so that a change of load on a shared
// machine shifts both sides of a pair alike.
//
// conformVsDriverRatio = ours in steps/s over the driver's steps/s, per pair of
// slices, against the Python example (the headline: a user's implementation is
// not the reference, and the Python one is the example they start from); the
// same against `node bin/cowmap.js adapter` is conformVsDriverRatioNode. A
// "step" is one operation and its state, in both. The 1-minute load average at
// the start of every slice is kept beside its figure.

import { join } from 'node:path';
import { CheckedRun } from './checkedRun.ts';
import { commandsMax, type ConformSpeedConfig, type RunFigures } from './conformSpeedSettings.ts';
import { PlainDriver } from './plainDriver.ts';
import { Checks, type Figure, type Log, type SectionResult } from './report.ts';
import { runInTurn } from './rotation.ts';
import { emptySeries, sum } from './series.ts';
import { ratios, summarize } from './stats.ts';
import { describeLoad } from './system.ts';
import { runWholeConform } from './wholeConformRun.ts';

interface AdapterUnderBench {
  /** Key suffix and label. */
  readonly key: '' | 'Node';
  readonly label: string;
  readonly command: readonly string[];
}

/** The slices of one adapter, per side: steps/s, load average, steps and sequences of each slice. */
function emptySliceSeries() {
  return emptySeries(
    'driverStepsPerSecond',
    'checkedStepsPerSecond',
    'driverLoad',
    'checkedLoad',
    'driverSteps',
    'checkedSteps',
    'driverRuns',
    'checkedRuns',
  );
}
type SliceSeries = ReturnType<typeof emptySliceSeries>;

/** The whole conform runs against the Python example. */
function emptyWholeRunSeries() {
  return emptySeries('stepsPerSecond', 'steps', 'seconds', 'load');
}
type WholeRunSeries = ReturnType<typeof emptyWholeRunSeries>;

function adaptersUnderBench(repoRoot: string): AdapterUnderBench[] {
  return [
    {
      key: '',
      label: 'the Python example (python3 examples/python-adapter/adapter.py)',
      command: ['python3', join(repoRoot, 'examples', 'python-adapter', 'adapter.py')],
    },
    {
      key: 'Node',
      label: 'the reference adapter (node bin/cowmap.js adapter)',
      command: [process.execPath, join(repoRoot, 'bin', 'cowmap.js'), 'adapter'],
    },
  ];
}

function describeSlice(run: RunFigures & { readonly runs: number }): string {
  return (
    `${run.steps} steps (${run.runs} sequences) in ${run.seconds.toFixed(1)} s = ` +
    `${(run.steps / run.seconds).toFixed(0)} steps/s (load ${run.loadAverage})`
  );
}

function recordSlice(series: SliceSeries, side: 'driver' | 'checked', run: RunFigures & { readonly runs: number }) {
  series[`${side}StepsPerSecond`].push(run.steps / run.seconds);
  series[`${side}Steps`].push(run.steps);
  series[`${side}Runs`].push(run.runs);
  series[`${side}Load`].push(run.loadAverage);
}

/**
 * The pairs of slices of one adapter. Both processes are started (outside the
 * timing) and kept for every slice; the slices alternate, so that a change of load
 * shifts both sides of a pair alike.
 */
async function measureSlices(adapter: AdapterUnderBench, config: ConformSpeedConfig, log: Log) {
  const series = emptySliceSeries();
  const checkedFailures: string[] = [];
  const name = adapter.key || 'Python';
  const plain = new PlainDriver(adapter.command, config);
  const ours = new CheckedRun(adapter.command, config);
  try {
    await plain.start();
    await ours.start();
    for (let repetition = 0; repetition < config.repetitions; repetition++) {
      const seed = config.seed + repetition;
      const progress = `${repetition + 1}/${config.repetitions}`;
      const driver = async () => {
        const run = await plain.slice(seed, config.secondsPerRun);
        recordSlice(series, 'driver', run);
        log(`  ${name} driver ${progress}: ${describeSlice(run)}`);
      };
      const checked = async () => {
        const run = await ours.slice(seed, config.secondsPerRun);
        if (run.failure !== null) checkedFailures.push(`seed ${seed}: ${run.failure}`);
        recordSlice(series, 'checked', run);
        log(`  ${name} cowmap checked ${progress}: ${describeSlice(run)}`);
      };
      await runInTurn([driver, checked], repetition);
    }
  } finally {
    await plain.close();
    await ours.close();
  }
  return { series, driverErrors: [...plain.errors], checkedFailures };
}

/** The whole conform runs against one adapter, after its slices. */
async function measureWholeRuns(command: readonly string[], config: ConformSpeedConfig, log: Log) {
  const series = emptyWholeRunSeries();
  const problems: string[] = [];
  for (let repetition = 0; repetition < config.conformRepetitions; repetition++) {
    const seed = config.seed + repetition;
    const run = await runWholeConform(command, config, seed);
    if (run.problem !== null) problems.push(`seed ${seed}: ${run.problem}`);
    series.stepsPerSecond.push(run.steps / run.seconds);
    series.steps.push(run.steps);
    series.seconds.push(run.seconds);
    series.load.push(run.loadAverage);
    log(
      `  Python whole conform --time-budget ${config.conformBudgetSeconds} ` +
        `${repetition + 1}/${config.conformRepetitions}: ${run.steps} steps in ${run.seconds.toFixed(1)} s = ` +
        `${(run.steps / run.seconds).toFixed(1)} steps/s (load ${run.loadAverage})`,
    );
  }
  return { series, problems };
}

/** conformVsDriverRatio, conformCheckedStepsPerSecond and driverStepsPerSecond of one adapter. */
function sliceFigures(adapter: AdapterUnderBench, series: SliceSeries, config: ConformSpeedConfig): Figure[] {
  const geometry = `${config.regions} x ${config.regionSize} B`;
  const side = adapter.key === '' ? 'Python' : 'Node';
  const driver = summarize(series.driverStepsPerSecond);
  const checked = summarize(series.checkedStepsPerSecond);
  const ratio = summarize(ratios(series.checkedStepsPerSecond, series.driverStepsPerSecond));
  const load = `driver ${describeLoad(series.driverLoad)}, cowmap ${describeLoad(series.checkedLoad)}`;
  const medianOf = (values: number[]) => summarize(values).median.toFixed(0);
  return [
    {
      key: `conformVsDriverRatio${adapter.key}`,
      label:
        `cowmap's checked steps/s over a plain sequential driver's, through ${adapter.label}` +
        `${adapter.key === '' ? ' (the headline)' : ''}, ${geometry}`,
      unit: 'ratio',
      summary: ratio,
      against:
        'a plain driver of the same adapter (hello; per sequence open, state, then one operation and state per step, ' +
        'close; nothing checked)',
      target: { text: '>= 0.8', met: ratio.median >= 0.8 },
      detail: `${checked.median.toFixed(0)} vs ${driver.median.toFixed(0)} steps/s; ${load}`,
    },
    {
      key: `conformCheckedStepsPerSecond${side}`,
      label:
        `cowmap's checked steps through ${adapter.label} (runFuzz without crashes, one process, ` +
        `slices of ${config.secondsPerRun} s)`,
      unit: 'steps/s',
      summary: checked,
      detail:
        `median ${medianOf(series.checkedSteps)} steps, ${medianOf(series.checkedRuns)} sequences; ` +
        describeLoad(series.checkedLoad),
    },
    {
      key: `driverStepsPerSecond${side}`,
      label: `a plain sequential driver of ${adapter.label} (slices of ${config.secondsPerRun} s)`,
      unit: 'steps/s',
      summary: driver,
      detail:
        `median ${medianOf(series.driverSteps)} steps, ${medianOf(series.driverRuns)} sequences; ` +
        describeLoad(series.driverLoad),
    },
  ];
}

/** conformRunStepsPerSecondPython. */
function wholeRunFigure(series: WholeRunSeries, config: ConformSpeedConfig): Figure {
  const whole = summarize(series.stepsPerSecond);
  return {
    key: 'conformRunStepsPerSecondPython',
    label:
      `a whole conform --time-budget ${config.conformBudgetSeconds} run through the Python example ` +
      '(every level it offers, process starts and crashes included)',
    unit: 'steps/s',
    summary: whole,
    // A whole run made 28 steps/s (a 457 s run) before one process served every run without a crash (docs/bench.md).
    target: { text: '>= 140 (5 x the 28 before one process served every run)', met: whole.median >= 140 },
    detail:
      `median ${summarize(series.steps).median.toFixed(0)} steps in ${summarize(series.seconds).median.toFixed(1)} s; ` +
      describeLoad(series.load),
  };
}

function conformNotes(config: ConformSpeedConfig): string[] {
  const { repetitions, secondsPerRun, seed } = config;
  return [
    `Conform speed: ${repetitions} pairs of slices, ${secondsPerRun} s of a plain sequential driver and ` +
      `${secondsPerRun} s of cowmap's checked run (runFuzz without crashes over one AdapterSut, ` +
      `commands-max ${commandsMax}) through the same adapter command, each side on one process started before the ` +
      `timing, in alternating order; ${config.regions} x ${config.regionSize} B, ` +
      `seeds ${seed}..${seed + repetitions - 1}. ` +
      'A step is one operation and its state in both; the driver checks nothing, ours runs the model beside it and ' +
      'compares. conformVsDriverRatio (Python example) is the headline; the 1-minute load average at the start of ' +
      'each run is beside each figure. ' +
      `conformRunStepsPerSecondPython: ${config.conformRepetitions} whole conform runs with --time-budget ` +
      `${config.conformBudgetSeconds}, after the slices, against the Python example (steps over the run's seconds, ` +
      'as its summary prints them).',
  ];
}

export async function benchConformSpeed(config: ConformSpeedConfig, log: Log): Promise<SectionResult> {
  const checks = new Checks();
  const figures: Figure[] = [];
  const data: Record<string, unknown> = {};
  let wholeRuns = { series: emptyWholeRunSeries(), problems: [] as string[] };
  for (const adapter of adaptersUnderBench(config.repoRoot)) {
    const { series, driverErrors, checkedFailures } = await measureSlices(adapter, config, log);
    if (adapter.key === '') wholeRuns = await measureWholeRuns(adapter.command, config, log);
    const name = adapter.key === '' ? 'Python example' : 'reference adapter';
    checks.expectAll(
      `conform speed: the plain driver of the ${name} got every state`,
      driverErrors,
      `${sum(series.driverSteps)} steps`,
    );
    checks.expectAll(
      `conform speed: cowmap's checked run finds no failure in the ${name}`,
      checkedFailures,
      `${sum(series.checkedRuns)} sequences`,
    );
    figures.push(...sliceFigures(adapter, series, config));
    data[adapter.key === '' ? 'python' : 'node'] = {
      command: adapter.command.map((part) => part.replace(config.repoRoot, '.')),
      ...series,
    };
  }
  checks.expectAll(
    'conform speed: the Python example conforms in every whole conform run',
    wholeRuns.problems,
    `${wholeRuns.series.steps.length} runs`,
  );
  figures.push(wholeRunFigure(wholeRuns.series, config));
  data.wholeConformPython = { budgetSeconds: config.conformBudgetSeconds, ...wholeRuns.series };
  return { section: 'conform', figures, checks: checks.list, notes: conformNotes(config), data };
}
