// cowmap conform [--level L | --up-to L] [--check NAME]... [--time-budget S] [--seed N]
//                [--regions N --region-size B] [--path P] [--trace FILE]... [--traces DIR]
//                [--keep-going] [--strict-messages] [--quick] [--transcript FILE]
//                [--report F.json] [--junit F.xml] [--reports DIR] [--out-dir DIR]
//                [--request-timeout S] -- CMD...
// Starts the implementation with CMD, asks its features, runs the levels it can
// (harness/conformance/) and prints the summary. Exit status: 0 conforms, 1 does
// not conform, 2 bad usage or an implementation that breaks the protocol, 130 or
// 143 interrupted (SIGINT, SIGTERM). The reports are written in every case.

import { randomInt } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AdapterSut } from '../../harness/adapter/adapterSut.ts';
import { removeTemporaryDirs } from '../../harness/adapter/temporaryDirs.ts';
import { defaultBudgetSeconds } from '../../harness/conformance/budget.ts';
import { junitReport } from '../../harness/conformance/junit.ts';
import { allCheckIds, checkKinds, levels, unknownCheckNames } from '../../harness/conformance/plan.ts';
import type { Level } from '../../harness/conformance/plan.ts';
import { ProgressPrinter } from '../../harness/conformance/progress.ts';
import { formatReport, jsonReport } from '../../harness/conformance/report.ts';
import type { ConformanceReport } from '../../harness/conformance/result.ts';
import { ConformanceRun, errorOf } from '../../harness/conformance/run.ts';
import { TraceError } from '../../harness/trace/traceError.ts';
import { bundledTracesDir, traceFiles } from '../../harness/trace/traceFiles.ts';
import { coverageHtml, coverageMarkdown } from '../../harness/transitionCoverage.ts';
import { sectorSize } from '../../impl/geometry.ts';
import type { Values } from '../command.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/conform.ts';
import { budgetSecondsBounds, integerOption, optionalIntegerOption, seedBounds } from '../integerOption.ts';
import { UsageError } from '../usageError.ts';

/** How long the `cowmap` process may linger after its report before it leaves anyway. */
const exitGraceMs = 3_000;

type ConformValues = Values<typeof description.options>;

function levelOption(name: string, text: string | undefined): Level | undefined {
  if (text === undefined) return undefined;
  if ((levels as readonly string[]).includes(text)) return text as Level;
  throw new UsageError(`--${name} must be one of ${levels.join(', ')}, got '${text}'`);
}

/** The pinned geometry, or undefined. */
function geometryOption(values: ConformValues): { regions: number; regionSize: number } | undefined {
  if (values.regions === undefined && values['region-size'] === undefined) return undefined;
  if (values.regions === undefined || values['region-size'] === undefined)
    throw new UsageError('--regions and --region-size go together');
  const regions = integerOption('regions', values.regions, { min: 1, max: 2 ** 31 - 1 });
  const regionSize = integerOption('region-size', values['region-size'], { min: sectorSize, max: 2 ** 30 });
  if (regionSize % sectorSize !== 0)
    throw new UsageError(`--region-size must be a multiple of ${sectorSize}, got ${regionSize}`);
  return { regions, regionSize };
}

function writeReports(values: ConformValues, report: ConformanceReport): void {
  if (values.report !== undefined) writeFileSync(values.report, jsonReport(report));
  if (values.junit !== undefined) writeFileSync(values.junit, junitReport(report));
  if (values.reports !== undefined) {
    mkdirSync(values.reports, { recursive: true });
    writeFileSync(join(values.reports, 'transitions.json'), `${JSON.stringify(report.coverage, null, 2)}\n`);
    writeFileSync(join(values.reports, 'transitions.md'), coverageMarkdown(report.coverage));
    writeFileSync(
      join(values.reports, 'transitions.html'),
      coverageHtml(report.coverage, `cowmap conform: ${report.implementation.name}`),
    );
  }
}

function exitStatus(report: ConformanceReport, signal: NodeJS.Signals | null): number {
  if (signal !== null) return signal === 'SIGINT' ? 130 : 143;
  if (report.error !== null) return report.error.code === 'E_INTERNAL' ? 1 : 2;
  return report.conforms ? 0 : 1;
}

/** The run's settings from the options (a UsageError when they do not make one). */
function settingsOf(values: ConformValues): Settings {
  const onlyLevel = levelOption('level', values.level);
  const upTo = levelOption('up-to', values['up-to']);
  if (onlyLevel !== undefined && upTo !== undefined)
    throw new UsageError('--level (one level) and --up-to (the levels up to one) go apart');
  const checks = values.check ?? [];
  const unknown = unknownCheckNames(checks);
  if (unknown.length > 0)
    throw new UsageError(
      `--check: no check named ${unknown.join(', ')} (checks: ${allCheckIds().join(', ')}; or a kind: ${checkKinds.join(', ')})`,
    );
  const seed = values.seed === undefined ? randomInt(seedBounds.max) : integerOption('seed', values.seed, seedBounds);
  const budget =
    optionalIntegerOption('time-budget', values['time-budget'], budgetSecondsBounds) ?? defaultBudgetSeconds;
  const timeout = integerOption('request-timeout', values['request-timeout'], { min: 1, max: 3600 });
  const geometry = geometryOption(values);
  if (values.path !== undefined) {
    const generated = checks.length === 1 && /(^|\/)(fast-check|history)$/.test(checks[0]!);
    if (values.seed === undefined || geometry === undefined || !generated) {
      throw new UsageError(
        '--path replays one fast-check counterexample: give it with --seed, --check (a fast-check or history check), ' +
          '--regions and --region-size, as the failure printed them',
      );
    }
  }
  const tracesDir = values.traces ?? bundledTracesDir;
  if (!existsSync(tracesDir)) throw new UsageError(`--traces: no folder ${tracesDir}`);
  const extraTraces = values.trace ?? [];
  const missingTrace = extraTraces.find((file) => !existsSync(file));
  if (missingTrace !== undefined) throw new UsageError(`--trace: no file ${missingTrace}`);
  return {
    level: onlyLevel ?? upTo ?? 'power',
    levelMode: onlyLevel === undefined ? 'upTo' : 'only',
    checks,
    seed,
    budget,
    timeout,
    geometry,
    tracesDir,
    extraTraces,
  };
}

interface Settings {
  readonly level: Level;
  readonly levelMode: 'only' | 'upTo';
  readonly checks: readonly string[];
  readonly seed: number;
  readonly budget: number;
  readonly timeout: number;
  readonly geometry: { readonly regions: number; readonly regionSize: number } | undefined;
  readonly tracesDir: string;
  readonly extraTraces: readonly string[];
}

async function conform(values: ConformValues, sutCommand: string[], settings: Settings): Promise<number> {
  const { seed, budget, timeout, geometry, tracesDir, extraTraces } = settings;
  process.stdout.write(`seed: ${seed}\n`);
  const transcriptFd = values.transcript === undefined ? null : openSync(values.transcript, 'w');
  const marks = { request: '>', response: '<', note: '#' } as const;
  const transcript =
    transcriptFd === null
      ? undefined
      : (direction: keyof typeof marks, line: string) => void writeSync(transcriptFd, `${marks[direction]} ${line}\n`);
  const sut = new AdapterSut(sutCommand, {
    requestTimeoutMs: timeout * 1000,
    ...(transcript === undefined ? {} : { transcript }),
  });
  const controller = new AbortController();
  const progress = new ProgressPrinter(process.stderr);
  const run = new ConformanceRun({
    command: sutCommand,
    sut,
    level: settings.level,
    levelMode: settings.levelMode,
    checks: settings.checks,
    seed,
    budgetSeconds: budget,
    traces: [...traceFiles(tracesDir), ...extraTraces],
    tracesDir,
    // Failures go under the working directory unless --out-dir or --traces say where.
    failuresDir: values['out-dir'] ?? join(values.traces ?? 'traces', 'failures'),
    quick: values.quick,
    keepGoing: values['keep-going'],
    strictMessages: values['strict-messages'],
    ...(geometry === undefined ? {} : { geometry }),
    ...(values.path === undefined ? {} : { fuzzPath: values.path }),
    requestTimeoutMs: timeout * 1000,
    ...(transcript === undefined ? {} : { transcript }),
    signal: controller.signal,
    onProgress: progress.update,
  });

  // Ctrl-C or SIGTERM: end the run between units, kill the adapter to end the
  // request in flight, remove every temporary directory, write the partial report.
  let caught: NodeJS.Signals | null = null;
  const finish = (report: ConformanceReport): number => {
    progress.stop();
    removeTemporaryDirs();
    process.stdout.write(`${formatReport(report)}\n`);
    writeReports(values, report);
    if (transcriptFd !== null) closeSync(transcriptFd);
    return exitStatus(report, caught);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (caught !== null) return;
    caught = signal;
    controller.abort();
    sut.kill();
    removeTemporaryDirs();
    // Should the run not come back (a protocol check's own process still holding a request), leave anyway.
    setTimeout(() => process.exit(finish(run.report())), 5_000).unref();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const status = finish(await run.run());
    // Interrupted: leave now, whatever a protocol check's own process still holds open.
    if (caught !== null) process.exit(status);
    // Run as the `cowmap` command, the run is over once its report is out: a child
    // process some failure left behind must not keep a CI job waiting. (The timer
    // does not keep the process alive; it fires only if something else does.)
    if (/cowmap(\.js)?$/.test(process.argv[1] ?? '')) setTimeout(() => process.exit(status), exitGraceMs).unref();
    return status;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    sut.kill();
  }
}

export const command = defineCommand(description, async ({ values, trailing }) => {
  if (trailing.length === 0)
    throw new UsageError(
      "conform needs the implementation's command after --, e.g. cowmap conform -- npx cowmap adapter",
    );
  // Bad usage first (a UsageError, exit 2); then nothing the run meets prints a stack trace.
  const settings = settingsOf(values);
  try {
    return await conform(values, trailing, settings);
  } catch (error) {
    if (error instanceof TraceError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    const { code, message } = errorOf(error);
    process.stderr.write(`${code}: ${message}\n`);
    return code === 'E_INTERNAL' ? 1 : 2;
  }
});
