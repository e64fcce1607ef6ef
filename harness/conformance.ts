// The conformance suite: any implementation, in any language, behind the adapter
// protocol (docs/adapter.md), judged level by level against the model.
//
//   rules      FIG. 4, every rule and rejection: the traces without crashes, path
//              tests of the statechart without crashes, fast-check sequences
//   crash      kills between requests: the traces with crashes, path tests with
//              crash and recover, fast-check sequences with kills
//   failpoint  crashes after every I/O call inside requests (feature failpoint)
//   power      the same with unsynced writes lost, and torn (features power-loss, torn)
//
// Levels are cumulative: asking for `failpoint` runs rules, crash and failpoint.
// A level an implementation cannot take (a feature it lacks) is skipped, and the
// report says why. A failure keeps the shortest failing trace and the command
// that replays it.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runFuzz } from './commandSequences.ts';
import type { CrashMode } from './commandSequences.ts';
import { runPaths, shortestPaths } from './pathTests.ts';
import type { PathOptions } from './pathTests.ts';
import { formatFailure, replayTrace } from './replay.ts';
import { scenarioTrace } from './scenario.ts';
import type { Feature, SystemUnderTest } from './sut.ts';
import { readTrace } from './trace/reader.ts';
import type { Trace } from './trace/trace.ts';

export const levels = ['rules', 'crash', 'failpoint', 'power'] as const;
export type Level = (typeof levels)[number];

export interface CheckResult {
  readonly name: string;
  readonly runs: number;
  readonly steps: number;
  readonly seconds: number;
  readonly failure: { readonly message: string; readonly trace: string | null; readonly replay: string | null } | null;
}

export interface LevelResult {
  readonly level: Level;
  readonly status: 'passed' | 'failed' | 'skipped';
  readonly reason: string | null;
  readonly checks: readonly CheckResult[];
  readonly seconds: number;
}

export interface ConformanceReport {
  readonly protocol: 1;
  readonly implementation: string;
  readonly command: readonly string[];
  readonly features: readonly Feature[];
  readonly seed: number;
  readonly levels: readonly LevelResult[];
  readonly conforms: boolean;
  readonly seconds: number;
  readonly steps: number;
}

export interface ConformanceOptions {
  readonly command: readonly string[];
  /** The highest level to run. */
  readonly level: Level;
  readonly seed: number;
  /** Seconds of fast-check sequences per level. */
  readonly budgetSeconds: number;
  readonly traces: readonly string[];
  readonly failuresDir: string;
  /** The implementation, kept running across checks: its close() only ends the volume. */
  readonly sut: SystemUnderTest & { start?(): Promise<void> };
  readonly onProgress?: (text: string) => void;
  /** Path tests of the one-region model instead of the two-region one (for a quick check). */
  readonly quick?: boolean;
}

/** The level a trace needs: what its crashes ask of an implementation. */
export function traceLevel(trace: Trace): Level {
  let level: Level = 'rules';
  for (const step of trace.steps) {
    if (step.kind !== 'op') continue;
    const needs: Level = step.crashAt?.mode === 'power' ? 'power' : step.crashAt !== undefined ? 'failpoint' : step.op === 'crash' ? 'crash' : 'rules';
    if (levels.indexOf(needs) > levels.indexOf(level)) level = needs;
  }
  return level;
}

function tracesTorn(trace: Trace): boolean {
  return trace.steps.some((step) => step.kind === 'op' && step.crashAt?.torn === true);
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A SUT whose close() ends the volume but keeps the process for the next check. */
function keptRunning(sut: SystemUnderTest): SystemUnderTest {
  return {
    name: sut.name,
    get features() {
      return sut.features;
    },
    create: (geometry) => sut.create(geometry),
    apply: (op) => sut.apply(op),
    applyCrashing: (op, crash) => sut.applyCrashing(op, crash),
    state: () => sut.state(),
    crash: () => sut.crash(),
    recover: () => sut.recover(),
    close: async () => {},
  };
}

export async function runConformance(options: ConformanceOptions): Promise<ConformanceReport> {
  const started = performance.now();
  await options.sut.start?.();
  const sut = keptRunning(options.sut);
  const features = options.sut.features;
  const replayCommand = (file: string) => `npx cowmap replay ${shellQuote(file)} -- ${options.command.map(shellQuote).join(' ')}`;
  const traces = options.traces.map((file) => readTrace(readFileSync(file, 'utf8'), file));
  const results: LevelResult[] = [];
  let totalSteps = 0;

  const traceCheck = async (name: string, selected: readonly Trace[]): Promise<CheckResult> => {
    const checkStarted = performance.now();
    let steps = 0;
    let runs = 0;
    for (const trace of selected) {
      options.onProgress?.(`${name}: ${trace.file}`);
      const result = await replayTrace(trace, sut);
      runs++;
      steps += result.stats.steps;
      if (result.failure !== null) {
        return { name, runs, steps, seconds: (performance.now() - checkStarted) / 1000, failure: { message: formatFailure(result.failure), trace: trace.file, replay: replayCommand(trace.file) } };
      }
    }
    return { name, runs, steps, seconds: (performance.now() - checkStarted) / 1000, failure: null };
  };

  const pathCheck = async (name: string, pathOptions: PathOptions, level: Level): Promise<CheckResult> => {
    const checkStarted = performance.now();
    const paths = shortestPaths(pathOptions);
    const result = await runPaths(paths, pathOptions, () => sut, (done) => options.onProgress?.(`${name}: ${done}/${paths.length} paths`));
    const seconds = (performance.now() - checkStarted) / 1000;
    if (result.failure === null) return { name, runs: result.paths, steps: result.steps, seconds, failure: null };
    // Paths are shortest already: the failing one is the trace to keep.
    const scenario = result.failure.result;
    mkdirSync(options.failuresDir, { recursive: true });
    const file = join(options.failuresDir, `conform-${level}-path-${result.paths}.jsonl`);
    writeFileSync(file, scenarioTrace({ regions: pathOptions.regions, regionSize: pathOptions.regionSize }, scenario.records, `conformance path test ${result.paths} (${level})`, [
      `A path test of the statechart that ${options.sut.name} fails: ${scenario.failure!.message.split('\n')[0]}`,
      `replay: ${replayCommand(file)}`,
    ], options.seed));
    return { name, runs: result.paths, steps: result.steps, seconds, failure: { message: scenario.failure!.message, trace: file, replay: replayCommand(file) } };
  };

  const fuzzCheck = async (name: string, crashBetween: boolean, crashModes: readonly CrashMode[]): Promise<CheckResult> => {
    const result = await runFuzz({
      seed: options.seed,
      timeBudgetMs: options.budgetSeconds * 1000,
      regions: 3,
      labels: 2,
      commandsMax: 30,
      makeSut: () => sut,
      crashBetween,
      crashModes,
      failuresDir: options.failuresDir,
      onProgress: (progress) => options.onProgress?.(`${name}: ${progress.runs} runs`),
    });
    const failure = result.failure === null ? null : { message: result.failure.message, trace: result.failure.tracePath, replay: replayCommand(result.failure.tracePath) };
    return { name: `${name} (seed ${options.seed})`, runs: result.runs, steps: result.steps, seconds: result.seconds, failure };
  };

  const pathRegions = options.quick === true ? 1 : 2;
  const plan: Record<Level, { needs: Feature[]; checks: (() => Promise<CheckResult>)[] }> = {
    rules: {
      needs: [],
      checks: [
        () => traceCheck('traces without crashes', traces.filter((trace) => traceLevel(trace) === 'rules')),
        () => pathCheck(`path tests (N=${pathRegions} V=1)`, { regions: pathRegions, values: 1, crash: false, regionSize: 512 }, 'rules'),
        () => fuzzCheck('fast-check sequences', false, []),
      ],
    },
    crash: {
      needs: [],
      checks: [
        () => traceCheck('traces with kills', traces.filter((trace) => traceLevel(trace) === 'crash')),
        () => pathCheck(`path tests with kills (N=${pathRegions} V=1)`, { regions: pathRegions, values: 1, crash: true, regionSize: 512 }, 'crash'),
        () => fuzzCheck('fast-check sequences with kills', true, []),
      ],
    },
    failpoint: {
      needs: ['failpoint'],
      checks: [
        () => traceCheck('traces with failpoints', traces.filter((trace) => traceLevel(trace) === 'failpoint')),
        () => fuzzCheck('fast-check sequences with failpoints', true, ['process']),
      ],
    },
    power: {
      needs: ['failpoint', 'power-loss'],
      checks: [
        () => traceCheck('traces with power loss', traces.filter((trace) => traceLevel(trace) === 'power' && (features.has('torn') || !tracesTorn(trace)))),
        () => fuzzCheck('fast-check sequences with power loss', true, features.has('torn') ? ['power', 'torn'] : ['power']),
      ],
    },
  };

  for (const level of levels.slice(0, levels.indexOf(options.level) + 1)) {
    const levelStarted = performance.now();
    const missing = plan[level].needs.filter((feature) => !features.has(feature));
    if (missing.length > 0) {
      results.push({ level, status: 'skipped', reason: `the implementation does not offer ${missing.join(', ')}`, checks: [], seconds: 0 });
      continue;
    }
    const checks: CheckResult[] = [];
    for (const check of plan[level].checks) {
      const result = await check();
      checks.push(result);
      totalSteps += result.steps;
      if (result.failure !== null) break;
    }
    const failed = checks.some((check) => check.failure !== null);
    results.push({ level, status: failed ? 'failed' : 'passed', reason: null, checks, seconds: (performance.now() - levelStarted) / 1000 });
  }
  await options.sut.close();
  const seconds = (performance.now() - started) / 1000;
  return {
    protocol: 1,
    implementation: options.sut.name,
    command: options.command,
    features: [...features],
    seed: options.seed,
    levels: results,
    conforms: results.every((level) => level.status !== 'failed') && results.some((level) => level.status === 'passed'),
    seconds,
    steps: totalSteps,
  };
}

export function formatReport(report: ConformanceReport): string {
  const lines = [
    `cowmap conformance, adapter protocol ${report.protocol}`,
    `implementation: ${report.implementation}`,
    `features: ${report.features.length === 0 ? '(none)' : report.features.join(', ')}`,
    `seed: ${report.seed}`,
    '',
  ];
  for (const level of report.levels) {
    lines.push(`level ${level.level}: ${level.status.toUpperCase()}${level.reason === null ? '' : ` (${level.reason})`}${level.status === 'skipped' ? '' : ` in ${level.seconds.toFixed(1)} s`}`);
    for (const check of level.checks) {
      lines.push(`  ${check.failure === null ? 'ok  ' : 'FAIL'} ${check.name}: ${check.runs} runs, ${check.steps} steps, ${check.seconds.toFixed(1)} s`);
      if (check.failure !== null) {
        lines.push(...check.failure.message.split('\n').map((line) => `       ${line}`));
        if (check.failure.trace !== null) lines.push(`       shortest failing trace: ${check.failure.trace}`);
        if (check.failure.replay !== null) lines.push(`       replay: ${check.failure.replay}`);
      }
    }
  }
  const passed = report.levels.filter((level) => level.status === 'passed').map((level) => level.level);
  lines.push('', `levels passed: ${passed.length === 0 ? 'none' : passed.join(', ')}`);
  lines.push(`${report.steps} steps in ${report.seconds.toFixed(1)} s (${Math.round(report.steps / Math.max(report.seconds, 1e-3))} steps/s)`);
  lines.push(report.conforms ? 'CONFORMS' : 'DOES NOT CONFORM');
  return lines.join('\n');
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** JUnit XML: a test suite a level, a test case a check (skipped levels as skipped cases). */
export function junitReport(report: ConformanceReport): string {
  const suites = report.levels.map((level) => {
    const cases = level.status === 'skipped'
      ? [`    <testcase classname="cowmap.${level.level}" name="${level.level}"><skipped message="${xmlEscape(level.reason ?? '')}"/></testcase>`]
      : level.checks.map((check) => {
          const body = check.failure === null ? '' : `<failure message="${xmlEscape(check.failure.message.split('\n')[0]!)}">${xmlEscape(`${check.failure.message}\n${check.failure.replay ?? ''}`)}</failure>`;
          return `    <testcase classname="cowmap.${level.level}" name="${xmlEscape(check.name)}" time="${check.seconds.toFixed(3)}">${body}</testcase>`;
        });
    const failures = level.checks.filter((check) => check.failure !== null).length;
    return `  <testsuite name="${level.level}" tests="${Math.max(cases.length, 1)}" failures="${failures}" skipped="${level.status === 'skipped' ? 1 : 0}" time="${level.seconds.toFixed(3)}">\n${cases.join('\n')}\n  </testsuite>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="cowmap conformance: ${xmlEscape(report.implementation)}">\n${suites.join('\n')}\n</testsuites>\n`;
}
