// The main job: verify an implementation against the model, exhaustively where it
// can and randomly where it must. Stages, in order: the FIG. 4 trace, every trace
// in traces/, path tests from the statechart, fast-check command sequences, the
// bounded exhaustive crash exploration, and the transition-coverage gate.
//
// Each stage reports what it ran; the summary table adds them up. The first
// failure ends the run (the mutation self-check measures time to detection).

import { readFileSync } from 'node:fs';
import type { Op } from '../model/types.ts';
import { replayTrace, formatFailure } from './replay.ts';
import { runFuzz } from './fuzz/run.ts';
import { exploreCrashes } from './exploration/explorer.ts';
import { formatFailureReport, statesPerSecond } from './exploration/report.ts';
import type { VolumeClass } from './types.ts';
import { runPaths, shortestPaths, simplePathOptions, simplePaths } from './pathTests.ts';
import type { PathOptions } from './pathTests.ts';
import type { SystemUnderTest } from './sut/systemUnderTest.ts';
import { readTrace } from './trace/reader.ts';
import { addHits, coverageGate, transitionCoverage } from './transitionCoverage.ts';
import type { TransitionCoverage } from './transitionCoverage.ts';

export interface StageResult {
  readonly stage: string;
  readonly runs: number;
  readonly steps: number;
  readonly crashStates: number;
  readonly invariantChecks: number;
  readonly seconds: number;
  /** Transition ids taken, with the number of runs that took each. */
  readonly hits: ReadonlyMap<string, number>;
  /** Why the stage failed (with the trace to replay where there is one), or null. */
  readonly failure: string | null;
  /** Extra figures for the summary, e.g. "sampled 12 crash points". */
  readonly note?: string;
}

export interface Stage {
  readonly name: string;
  run(context: VerifyContext): Promise<StageResult>;
}

export interface VerifyContext {
  readonly makeSut: () => SystemUnderTest;
  readonly seed: number;
  /** Seconds each randomised stage may take. */
  readonly budgetSeconds: number;
  readonly traceFiles: readonly string[];
  readonly failuresDir: string;
  readonly onProgress?: (stage: string, text: string) => void;
}

export interface VerifyResult {
  readonly stages: readonly StageResult[];
  readonly coverage: TransitionCoverage;
  readonly failure: { readonly stage: string; readonly message: string; readonly seconds: number } | null;
  readonly seconds: number;
}

function elapsed(startedMs: number): number {
  return (performance.now() - startedMs) / 1000;
}

export function traceStage(name: string, files: (context: VerifyContext) => readonly string[]): Stage {
  return {
    name,
    async run(context) {
      const started = performance.now();
      const hits = new Map<string, number>();
      let steps = 0;
      let checks = 0;
      let crashStates = 0;
      let runs = 0;
      const outcome = (failure: string | null) => ({
        stage: name,
        runs,
        steps,
        crashStates,
        invariantChecks: checks,
        seconds: elapsed(started),
        hits,
        failure,
      });
      for (const file of files(context)) {
        const result = await replayTrace(readTrace(readFileSync(file, 'utf8'), file), context.makeSut());
        runs++;
        steps += result.stats.steps;
        checks += result.stats.invariantChecks;
        crashStates += result.stats.crashStates;
        addHits(hits, result.covered);
        const failure =
          result.failure === null ? null : `${formatFailure(result.failure)}\nreplay: npx cowmap replay ${file}`;
        if (failure !== null) return outcome(failure);
        context.onProgress?.(name, `${runs} traces`);
      }
      return outcome(null);
    },
  };
}

export function pathStage(options: PathOptions, simplePathsMax: number): Stage {
  const name = `path tests (N=${options.regions} V=${options.values}${options.crash ? ' crash' : ''})`;
  return {
    name,
    async run(context) {
      const started = performance.now();
      const hits = new Map<string, number>();
      const sets: [PathOptions, Op[][]][] = [
        [options, shortestPaths(options)],
        [simplePathOptions, simplePaths(simplePathsMax)],
      ];
      let runs = 0;
      let steps = 0;
      // Path tests check every invariant at every step of the model, so their checks are their steps.
      const outcome = (failure: string | null) => ({
        stage: name,
        runs,
        steps,
        crashStates: 0,
        invariantChecks: steps,
        seconds: elapsed(started),
        hits,
        failure,
      });
      for (const [pathOptions, paths] of sets) {
        const result = await runPaths(paths, pathOptions, context.makeSut, (done) =>
          context.onProgress?.(name, `${runs + done}/${sets[0]![1].length + sets[1]![1].length} paths`),
        );
        runs += result.paths;
        steps += result.steps;
        addHits(hits, result.covered);
        if (result.failure !== null) {
          const failure = result.failure.result.failure!;
          const path = result.failure.path.map((op) => op.type + ('region' in op ? ` ${op.region}` : '')).join(', ');
          return outcome(`path ${result.paths}: ${failure.message}\n  path: ${path}`);
        }
      }
      return outcome(null);
    },
  };
}

export function fuzzStage(options: {
  regions: number;
  labels: number;
  commandsMax: number;
  mutantArgs: readonly string[];
}): Stage {
  const name = `fast-check sequences (N=${options.regions})`;
  return {
    name,
    async run(context) {
      const result = await runFuzz({
        seed: context.seed,
        timeBudgetMs: context.budgetSeconds * 1000,
        regions: options.regions,
        labels: options.labels,
        commandsMax: options.commandsMax,
        makeSut: context.makeSut,
        failuresDir: context.failuresDir,
        replayArgs: options.mutantArgs,
        onProgress: (progress) => context.onProgress?.(name, `${progress.runs} runs, ${progress.steps} steps`),
      });
      const failure =
        result.failure === null
          ? null
          : `${result.failure.message}\nseed ${result.seed}, path ${result.failure.path}; ` +
            `the shortest failing sequence is saved in ${result.failure.tracePath}\n` +
            `replay:\n${result.failure.replay.map((line) => `  ${line}`).join('\n')}`;
      return {
        stage: name,
        runs: result.runs,
        steps: result.steps,
        crashStates: result.crashStates,
        invariantChecks: result.invariantChecks,
        seconds: result.seconds,
        hits: result.hits,
        failure,
        note: `seed ${result.seed}, ${Math.round(result.steps / Math.max(result.seconds, 1e-3))} steps/s`,
      };
    },
  };
}

export function crashStage(options: {
  length: number;
  regions: number;
  values: number;
  volumeClass: VolumeClass;
  volumeName: string;
}): Stage {
  const name = `crash exploration (L=${options.length} N=${options.regions})`;
  return {
    name,
    async run(context) {
      const result = await exploreCrashes({
        length: options.length,
        regions: options.regions,
        values: options.values,
        volumeClass: options.volumeClass,
        volumeName: options.volumeName,
        failuresDir: context.failuresDir,
        onProgress: (stats) => context.onProgress?.(name, `${stats.crashStates} crash states`),
      });
      const stats = result.stats;
      return {
        stage: name,
        runs: stats.crashSites,
        steps: stats.oracle.steps,
        crashStates: stats.crashStates,
        invariantChecks: stats.oracle.invariantChecks,
        seconds: stats.seconds,
        // Ids only, not counts: the exploration merges equal prefixes, so a count would say little.
        hits: new Map([...result.covered].map((id) => [id, 1])),
        failure: result.failure === null ? null : formatFailureReport(result.failure),
        note: `${Math.round(statesPerSecond(stats))} crash states/s, ${stats.exhaustedPoints} points exhausted, ${stats.sampledPoints} sampled`,
      };
    },
  };
}

export async function verify(stages: readonly Stage[], context: VerifyContext): Promise<VerifyResult> {
  const started = performance.now();
  const results: StageResult[] = [];
  const hits = new Map<string, number>();
  for (const stage of stages) {
    const result = await stage.run(context);
    results.push(result);
    for (const [id, count] of result.hits) addHits(hits, [id], count);
    if (result.failure !== null) {
      return {
        stages: results,
        coverage: transitionCoverage(hits),
        failure: { stage: stage.name, message: result.failure, seconds: elapsed(started) },
        seconds: elapsed(started),
      };
    }
  }
  const coverage = transitionCoverage(hits);
  const gate = coverageGate(coverage);
  const failure = gate === null ? null : { stage: 'transition gate', message: gate, seconds: elapsed(started) };
  return { stages: results, coverage, failure, seconds: elapsed(started) };
}

/** The summary table: one row a stage, then the totals. */
export function summaryTable(result: VerifyResult): string {
  const header = ['stage', 'runs', 'steps', 'crash states', 'transitions', 'invariants checked', 'seconds', 'result'];
  const total = transitionCoverage(new Map()).total;
  const rows = result.stages.map((stage) => [
    stage.stage,
    String(stage.runs),
    String(stage.steps),
    String(stage.crashStates),
    `${stage.hits.size}/${total}`,
    String(stage.invariantChecks),
    stage.seconds.toFixed(1),
    (stage.failure === null ? 'ok' : 'FAILED') + (stage.note === undefined ? '' : ` (${stage.note})`),
  ]);
  const sum = (pick: (stage: StageResult) => number) =>
    String(result.stages.reduce((acc, stage) => acc + pick(stage), 0));
  rows.push([
    'total',
    sum((s) => s.runs),
    sum((s) => s.steps),
    sum((s) => s.crashStates),
    `${result.coverage.covered}/${result.coverage.total}`,
    sum((s) => s.invariantChecks),
    result.seconds.toFixed(1),
    result.failure === null ? 'ok' : `FAILED in ${result.failure.stage}`,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === 0 || column === cells.length - 1 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
      )
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}
