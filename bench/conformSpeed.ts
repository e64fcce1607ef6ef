// 6. The conformance suite's speed through the adapter, against the speed of the
// same implementation driven by the plainest client there is (issue 11, item 6).
//
// The baseline is a plain sequential driver: it spawns the adapter, says hello,
// then loops "one operation, then state" with the op mix of the fast-check
// sequences without crashes (writes of full-region bytes, transfers, swaps,
// completions, reads, arguments out of range), in sequences of their lengths on
// fresh volumes, reading each answer before it sends the next request and
// checking nothing. Ours is cowmap's checked run through the same adapter
// command: runFuzz over one AdapterSut kept running (a fresh volume per
// sequence, no crashes), every step run on the model beside it, states compared
// and invariants checked. Both on the same geometry, each side on one process
// started before the timing, in short slices of the same length that alternate
// (driver first, then ours first), so that a change of load on a shared machine
// shifts both sides of a pair alike.
//
// conformVsDriverRatio = ours in steps/s over the driver's steps/s, per pair of
// slices, against the Python example (the headline: a user's implementation is
// not the reference, and the Python one is the example they start from); the
// same against `node bin/cowmap.js adapter` is conformVsDriverRatioNode. A
// "step" is one operation and its state, in both. The 1-minute load average at
// the start of every slice is kept beside its figure.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { AdapterSut } from '../harness/adapterSut.ts';
import { runFuzz } from '../harness/commandSequences.ts';
import { runConformance } from '../harness/conformance/run.ts';
import { Prng } from '../harness/prng.ts';
import { keptRunning } from '../harness/sut.ts';
import type { SystemUnderTest } from '../harness/sut.ts';
import { bundledTracesDir, traceFiles } from '../harness/trace/traceFiles.ts';
import { Checks, type Figure, type Log, type SectionResult } from './report.ts';
import { ratios, summarize } from './stats.ts';

export interface ConformSpeedConfig {
  readonly root: string;
  readonly repoRoot: string;
  readonly seed: number;
  /** Pairs of slices, driver and ours, in alternating order. */
  readonly repetitions: number;
  /** How long each contender runs in each slice. */
  readonly secondsPerRun: number;
  readonly regions: number;
  readonly regionSize: number;
  /** Whole `conform` runs against the Python example, and the time budget of each. */
  readonly conformRepetitions: number;
  readonly conformBudgetSeconds: number;
}

interface AdapterUnderBench {
  /** Key suffix and label. */
  readonly key: '' | 'Node';
  readonly label: string;
  readonly command: readonly string[];
}

interface RunFigures {
  readonly steps: number;
  readonly seconds: number;
  readonly loadAverage: number;
}

/** No request waits longer than this for its answer: the bench must end. */
const requestTimeoutMs = 30_000;
/** Contents per region the driver writes, as the fuzz's labels per region. */
const contentsPerRegion = 3;
/** The fast-check sequences' longest sequence (fuzzDefaults.commandsMax). */
const commandsMax = 50;

function loadAverageNow(): number {
  return Number(loadavg()[0]!.toFixed(2));
}

// ------------------------------------------------------------ the driver

/** One adapter process and one request in flight: write a line, read a line. */
class PlainClient {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffered = '';
  private readonly lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private ended = false;
  private nextId = 1;

  constructor(command: readonly string[], cwd: string) {
    this.child = spawn(command[0]!, command.slice(1), { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => {
      this.buffered += chunk;
      for (let at = this.buffered.indexOf('\n'); at >= 0; at = this.buffered.indexOf('\n')) {
        this.deliver(this.buffered.slice(0, at));
        this.buffered = this.buffered.slice(at + 1);
      }
    });
    this.child.stdout.on('end', () => this.end());
    // Its logs are not ours to read; drained so that the pipe never fills.
    this.child.stderr.resume();
    // A process that cannot start or goes away shows as a request without an answer.
    this.child.on('error', () => this.end());
    this.child.stdin.on('error', () => this.end());
  }

  private end(): void {
    this.ended = true;
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.(null);
  }

  private deliver(line: string): void {
    if (this.waiting !== null) {
      const waiting = this.waiting;
      this.waiting = null;
      waiting(line);
    } else {
      this.lines.push(line);
    }
  }

  private nextLine(): Promise<string | null> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        resolve(null);
      }, requestTimeoutMs);
      this.waiting = (answer) => {
        clearTimeout(timer);
        resolve(answer);
      };
    });
  }

  /** Sends one request and returns its parsed answer. */
  async request(op: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    this.child.stdin.write(`${JSON.stringify({ id, op, ...fields })}\n`);
    const line = await this.nextLine();
    if (line === null)
      throw new Error(`driver: no answer to ${op} (request ${id}) from ${this.child.spawnargs.join(' ')}`);
    const answer = JSON.parse(line) as Record<string, unknown>;
    if (answer.id !== id) throw new Error(`driver: answer for request ${String(answer.id)} to request ${id}`);
    return answer;
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null || this.child.pid === undefined) resolve();
      else this.child.once('exit', () => resolve());
    });
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), requestTimeoutMs);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * The fast-check sequences' op mix without crashes, by weight: write 8, transfer
 * 6, startCycle 3, completeCycle 3, read 2 (a quarter of them out of range),
 * an argument out of range 1 (write or transfer past the last region, short data).
 */
function nextRequest(
  prng: Prng,
  regions: number,
  contents: readonly (readonly string[])[],
  shortData: string,
): [string, Record<string, unknown>] {
  const pick = (count: number) => prng.nextUint32() % count;
  const region = pick(regions);
  const roll = pick(23);
  if (roll < 8) return ['write', { region, data: contents[region]![pick(contentsPerRegion)]! }];
  if (roll < 14) return ['transfer', { region }];
  if (roll < 17) return ['startCycle', {}];
  if (roll < 20) return ['completeCycle', {}];
  if (roll < 22)
    return ['read', { region: pick(4) === 0 ? regions : region, volume: pick(2) === 0 ? 'primary' : 'secondary' }];
  const bad = pick(3);
  if (bad === 0) return ['write', { region: regions, data: contents[0]![0]! }];
  if (bad === 1) return ['transfer', { region: regions }];
  return ['write', { region, data: shortData }];
}

/**
 * The plain driver of one adapter process, run in slices of time. Its sequences
 * are shaped as the fast-check ones are: a fresh volume each (open with create,
 * state), a length uniform in 0..commandsMax, then close; so that both sides do
 * the same work (a long history on one volume would mostly be cheap rejections,
 * E_NOT_DRAINED and E_PHASE, with few cycles).
 */
class PlainDriver {
  private readonly client: PlainClient;
  private readonly volumesDir: string;
  /** Seeded full-region bytes, base64 as they go on the wire (a write is as long as with labels). */
  private readonly contents: string[][];
  private readonly shortData = Buffer.alloc(8).toString('base64');
  private volumeCount = 0;
  readonly errors: string[] = [];

  constructor(
    command: readonly string[],
    private readonly config: ConformSpeedConfig,
  ) {
    const prng = new Prng(config.seed);
    this.contents = Array.from({ length: config.regions }, () =>
      Array.from({ length: contentsPerRegion }, () => {
        const bytes = Buffer.alloc(config.regionSize);
        for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE(prng.nextUint32(), i);
        return bytes.toString('base64');
      }),
    );
    this.volumesDir = mkdtempSync(join(config.root, 'driver-'));
    this.client = new PlainClient(command, config.repoRoot);
  }

  private expectOk(what: string, answer: Record<string, unknown>): void {
    if (answer.ok !== true && this.errors.length < 3)
      this.errors.push(`${what}: ${JSON.stringify(answer).slice(0, 200)}`);
  }

  async start(): Promise<void> {
    this.expectOk('hello', await this.client.request('hello'));
  }

  /** Sequences for `seconds` (the last one cut at the deadline): the steps done. */
  async slice(seed: number, seconds: number): Promise<RunFigures & { readonly runs: number }> {
    const loadAverage = loadAverageNow();
    const prng = new Prng(seed);
    const config = this.config;
    let steps = 0;
    let runs = 0;
    const started = process.hrtime.bigint();
    const deadline = started + BigInt(Math.round(seconds * 1e9));
    const timeLeft = () => process.hrtime.bigint() < deadline;
    while (timeLeft()) {
      const dir = join(this.volumesDir, `volume-${this.volumeCount++}`);
      this.expectOk(
        'open',
        await this.client.request('open', {
          dir,
          create: true,
          regions: config.regions,
          regionSize: config.regionSize,
        }),
      );
      this.expectOk('state', await this.client.request('state'));
      const length = prng.nextUint32() % (commandsMax + 1);
      for (let index = 0; index < length && timeLeft(); index++) {
        const [op, fields] = nextRequest(prng, config.regions, this.contents, this.shortData);
        await this.client.request(op, fields);
        this.expectOk('state', await this.client.request('state'));
        steps++;
      }
      this.expectOk('close', await this.client.request('close'));
      runs++;
    }
    return { steps, seconds: Number(process.hrtime.bigint() - started) / 1e9, loadAverage, runs };
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

// ------------------------------------------------------------ ours

/** The same adapter command under cowmap's checked run: runFuzz without crashes, one process for every sequence. */
class CheckedRun {
  private readonly sut: AdapterSut;
  /** Every sequence creates its volume afresh in the same process; close() of a sequence only ends its volume. */
  private readonly kept: SystemUnderTest;

  constructor(
    command: readonly string[],
    private readonly config: ConformSpeedConfig,
  ) {
    const sut = new AdapterSut(command, { cwd: config.repoRoot, requestTimeoutMs });
    this.sut = sut;
    this.kept = keptRunning(sut);
  }

  start(): Promise<void> {
    return this.sut.start();
  }

  async slice(
    seed: number,
    seconds: number,
  ): Promise<RunFigures & { readonly failure: string | null; readonly runs: number }> {
    const loadAverage = loadAverageNow();
    const result = await runFuzz({
      seed,
      timeBudgetMs: seconds * 1000,
      regions: this.config.regions,
      regionSize: this.config.regionSize,
      labels: contentsPerRegion,
      commandsMax,
      makeSut: () => this.kept,
      crashModes: [],
      crashBetween: false,
      failuresDir: join(this.config.root, 'conform-failures'),
    });
    const failure = result.failure === null ? null : result.failure.message.split('\n')[0]!;
    return { steps: result.steps, seconds: result.seconds, loadAverage, failure, runs: result.runs };
  }

  close(): Promise<void> {
    return this.sut.close();
  }
}

// ------------------------------------------------------------ a whole conform run

/** A whole `conform --time-budget S` run (every level the adapter offers), as a user starts it. */
async function runWholeConform(
  command: readonly string[],
  config: ConformSpeedConfig,
  seed: number,
): Promise<RunFigures & { readonly problem: string | null }> {
  const loadAverage = loadAverageNow();
  const report = await runConformance({
    command,
    sut: new AdapterSut(command, { cwd: config.repoRoot, requestTimeoutMs }),
    seed,
    budgetSeconds: config.conformBudgetSeconds,
    traces: traceFiles(bundledTracesDir),
    tracesDir: bundledTracesDir,
    failuresDir: join(config.root, 'conform-run-failures'),
  });
  const failed = report.levels.flatMap((level) => level.checks).find((check) => check.failure !== null);
  const problem =
    report.error !== null
      ? `${report.error.code}: ${report.error.message}`
      : failed !== undefined
        ? `${failed.id}: ${failed.failure!.message.split('\n')[0]}`
        : report.conforms
          ? null
          : 'it does not conform';
  return { steps: report.steps, seconds: report.seconds, loadAverage, problem };
}

// ------------------------------------------------------------ the section

function describeLoad(values: readonly number[]): string {
  const summary = summarize(values);
  return `load average ${summary.median.toFixed(2)} (${summary.min.toFixed(2)}..${summary.max.toFixed(2)})`;
}

export async function benchConformSpeed(config: ConformSpeedConfig, log: Log): Promise<SectionResult> {
  const checks = new Checks();
  const figures: Figure[] = [];
  const data: Record<string, unknown> = {};
  const adapters: AdapterUnderBench[] = [
    {
      key: '',
      label: 'the Python example (python3 examples/python-adapter/adapter.py)',
      command: ['python3', join(config.repoRoot, 'examples', 'python-adapter', 'adapter.py')],
    },
    {
      key: 'Node',
      label: 'the reference adapter (node bin/cowmap.js adapter)',
      command: [process.execPath, join(config.repoRoot, 'bin', 'cowmap.js'), 'adapter'],
    },
  ];
  const geometry = `${config.regions} x ${config.regionSize} B`;
  const wholeRun = {
    stepsPerSecond: [] as number[],
    steps: [] as number[],
    seconds: [] as number[],
    load: [] as number[],
  };
  const conformProblems: string[] = [];
  for (const adapter of adapters) {
    const series = {
      driverStepsPerSecond: [] as number[],
      checkedStepsPerSecond: [] as number[],
      driverLoad: [] as number[],
      checkedLoad: [] as number[],
      driverSteps: [] as number[],
      checkedSteps: [] as number[],
      driverRuns: [] as number[],
      checkedRuns: [] as number[],
    };
    const driverErrors: string[] = [];
    const checkedFailures: string[] = [];
    // Both processes started (outside the timing) and kept for every slice; the
    // slices alternate, so that a change of load shifts both sides of a pair alike.
    const plain = new PlainDriver(adapter.command, config);
    const ours = new CheckedRun(adapter.command, config);
    try {
      await plain.start();
      await ours.start();
      for (let repetition = 0; repetition < config.repetitions; repetition++) {
        const seed = config.seed + repetition;
        const driver = async () => {
          const run = await plain.slice(seed, config.secondsPerRun);
          series.driverStepsPerSecond.push(run.steps / run.seconds);
          series.driverSteps.push(run.steps);
          series.driverRuns.push(run.runs);
          series.driverLoad.push(run.loadAverage);
          log(
            `  ${adapter.key || 'Python'} driver ${repetition + 1}/${config.repetitions}: ${run.steps} steps (${run.runs} sequences) in ${run.seconds.toFixed(1)} s = ${(run.steps / run.seconds).toFixed(0)} steps/s (load ${run.loadAverage})`,
          );
        };
        const checked = async () => {
          const run = await ours.slice(seed, config.secondsPerRun);
          if (run.failure !== null) checkedFailures.push(`seed ${seed}: ${run.failure}`);
          series.checkedStepsPerSecond.push(run.steps / run.seconds);
          series.checkedSteps.push(run.steps);
          series.checkedRuns.push(run.runs);
          series.checkedLoad.push(run.loadAverage);
          log(
            `  ${adapter.key || 'Python'} cowmap checked ${repetition + 1}/${config.repetitions}: ${run.steps} steps (${run.runs} sequences) in ${run.seconds.toFixed(1)} s = ${(run.steps / run.seconds).toFixed(0)} steps/s (load ${run.loadAverage})`,
          );
        };
        if (repetition % 2 === 0) {
          await driver();
          await checked();
        } else {
          await checked();
          await driver();
        }
      }
    } finally {
      await plain.close();
      await ours.close();
    }
    driverErrors.push(...plain.errors);
    if (adapter.key === '') {
      for (let repetition = 0; repetition < config.conformRepetitions; repetition++) {
        const seed = config.seed + repetition;
        const run = await runWholeConform(adapter.command, config, seed);
        if (run.problem !== null) conformProblems.push(`seed ${seed}: ${run.problem}`);
        wholeRun.stepsPerSecond.push(run.steps / run.seconds);
        wholeRun.steps.push(run.steps);
        wholeRun.seconds.push(run.seconds);
        wholeRun.load.push(run.loadAverage);
        log(
          `  Python whole conform --time-budget ${config.conformBudgetSeconds} ${repetition + 1}/${config.conformRepetitions}: ${run.steps} steps in ${run.seconds.toFixed(1)} s = ${(run.steps / run.seconds).toFixed(1)} steps/s (load ${run.loadAverage})`,
        );
      }
    }
    const name = adapter.key === '' ? 'Python example' : 'reference adapter';
    checks.expectAll(
      `conform speed: the plain driver of the ${name} got every state`,
      driverErrors,
      `${series.driverSteps.reduce((a, b) => a + b, 0)} steps`,
    );
    checks.expectAll(
      `conform speed: cowmap's checked run finds no failure in the ${name}`,
      checkedFailures,
      `${series.checkedRuns.reduce((a, b) => a + b, 0)} sequences`,
    );
    const driver = summarize(series.driverStepsPerSecond);
    const checked = summarize(series.checkedStepsPerSecond);
    const ratio = summarize(ratios(series.checkedStepsPerSecond, series.driverStepsPerSecond));
    const load = `driver ${describeLoad(series.driverLoad)}, cowmap ${describeLoad(series.checkedLoad)}`;
    figures.push({
      key: `conformVsDriverRatio${adapter.key}`,
      label: `cowmap's checked steps/s over a plain sequential driver's, through ${adapter.label}${adapter.key === '' ? ' (the headline)' : ''}, ${geometry}`,
      unit: 'ratio',
      summary: ratio,
      against:
        'a plain driver of the same adapter (hello; per sequence open, state, then one operation and state per step, close; nothing checked)',
      target: { text: '>= 0.8', met: ratio.median >= 0.8 },
      detail: `${checked.median.toFixed(0)} vs ${driver.median.toFixed(0)} steps/s; ${load}`,
    });
    figures.push({
      key: `conformCheckedStepsPerSecond${adapter.key === '' ? 'Python' : 'Node'}`,
      label: `cowmap's checked steps through ${adapter.label} (runFuzz without crashes, one process, slices of ${config.secondsPerRun} s)`,
      unit: 'steps/s',
      summary: checked,
      detail: `median ${summarize(series.checkedSteps).median.toFixed(0)} steps, ${summarize(series.checkedRuns).median.toFixed(0)} sequences; ${describeLoad(series.checkedLoad)}`,
    });
    figures.push({
      key: `driverStepsPerSecond${adapter.key === '' ? 'Python' : 'Node'}`,
      label: `a plain sequential driver of ${adapter.label} (slices of ${config.secondsPerRun} s)`,
      unit: 'steps/s',
      summary: driver,
      detail: `median ${summarize(series.driverSteps).median.toFixed(0)} steps, ${summarize(series.driverRuns).median.toFixed(0)} sequences; ${describeLoad(series.driverLoad)}`,
    });
    data[adapter.key === '' ? 'python' : 'node'] = {
      command: adapter.command.map((part) => part.replace(config.repoRoot, '.')),
      ...series,
    };
  }
  checks.expectAll(
    'conform speed: the Python example conforms in every whole conform run',
    conformProblems,
    `${wholeRun.steps.length} runs`,
  );
  const whole = summarize(wholeRun.stepsPerSecond);
  figures.push({
    key: 'conformRunStepsPerSecondPython',
    label: `a whole conform --time-budget ${config.conformBudgetSeconds} run through the Python example (every level it offers, process starts and crashes included)`,
    unit: 'steps/s',
    summary: whole,
    // Issue 11 measured 28 steps/s (a 457 s run) before one process served every run without a crash.
    target: { text: '>= 140 (5 x the 28 of issue 11)', met: whole.median >= 140 },
    detail: `median ${summarize(wholeRun.steps).median.toFixed(0)} steps in ${summarize(wholeRun.seconds).median.toFixed(1)} s; ${describeLoad(wholeRun.load)}`,
  });
  data.wholeConformPython = { budgetSeconds: config.conformBudgetSeconds, ...wholeRun };
  return {
    section: 'conform',
    figures,
    checks: checks.list,
    notes: [
      `Conform speed: ${config.repetitions} pairs of slices, ${config.secondsPerRun} s of a plain sequential driver and ${config.secondsPerRun} s of cowmap's checked run (runFuzz without crashes over one AdapterSut, ` +
        `commands-max ${commandsMax}) through the same adapter command, each side on one process started before the timing, in alternating order; ${geometry}, seeds ${config.seed}..${config.seed + config.repetitions - 1}. ` +
        'A step is one operation and its state in both; the driver checks nothing, ours runs the model beside it and compares. ' +
        'conformVsDriverRatio (Python example) is the headline; the 1-minute load average at the start of each run is beside each figure. ' +
        `conformRunStepsPerSecondPython: ${config.conformRepetitions} whole conform runs with --time-budget ${config.conformBudgetSeconds}, after the slices, against the Python example (steps over the run's seconds, as its summary prints them).`,
    ],
    data,
  };
}
