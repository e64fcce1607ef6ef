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
import { parseArgs } from 'node:util';
import { AdapterSut, removeTemporaryDirs } from '../../harness/adapterSut.ts';
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
import type { Command } from '../main.ts';
import { integerOption, usageError, usageProblem } from './options.ts';

/** Splits `options -- command` (the command's own arguments are not ours to parse). */
export function splitCommand(argv: readonly string[]): { own: string[]; command: string[] } {
  const at = argv.indexOf('--');
  return at < 0 ? { own: [...argv], command: [] } : { own: argv.slice(0, at), command: argv.slice(at + 1) };
}

export const conformOptions = {
  level: { type: 'string' },
  'up-to': { type: 'string' },
  check: { type: 'string', multiple: true },
  'time-budget': { type: 'string' },
  seed: { type: 'string' },
  path: { type: 'string' },
  regions: { type: 'string' },
  'region-size': { type: 'string' },
  trace: { type: 'string', multiple: true },
  traces: { type: 'string' },
  'keep-going': { type: 'boolean', default: false },
  'strict-messages': { type: 'boolean', default: false },
  quick: { type: 'boolean', default: false },
  transcript: { type: 'string' },
  report: { type: 'string' },
  junit: { type: 'string' },
  reports: { type: 'string' },
  'out-dir': { type: 'string' },
  'request-timeout': { type: 'string', default: '30' },
} as const;

/** `cowmap conform --help`: one line per option of `conformOptions` (a test keeps them in step). */
export const conformHelp = `usage: cowmap conform [options] -- CMD...
Runs the conformance suite against the implementation that CMD starts (adapter
protocol 1, docs/adapter.md). Exit 0 conforms, 1 does not, 2 bad usage or an
implementation that breaks the protocol, 130/143 interrupted.

  --up-to LEVEL         the levels up to LEVEL (rules, crash, failpoint, power; default power)
  --level LEVEL         only LEVEL
  --check ID            only this check (e.g. rules/protocol, crash/fast-check; repeatable)
  --time-budget S       the whole run, in seconds (default ${defaultBudgetSeconds})
  --seed N              the seed of every generated check (default random, printed)
  --path P              with --seed, --check, --regions, --region-size: replay one fast-check counterexample
  --regions N           with --region-size: run the generated checks on this geometry only
  --region-size B       region size in bytes, a multiple of 512
  --trace FILE          a trace to run beside the bundled ones (repeatable)
  --traces DIR          the bundled traces' folder (default cowmap's own)
  --keep-going          go on after a failure
  --strict-messages     fail on a rejection message that does not name the operation, region and phase
  --quick               small path models and whole cheap checks (for CI smoke runs)
  --transcript FILE     every request and answer, in order
  --report FILE         the JSON report
  --junit FILE          the JUnit XML report
  --reports DIR         the transition coverage (JSON, Markdown, HTML)
  --out-dir DIR         where failing traces are saved (default traces/failures)
  --request-timeout S   an answer's deadline, in seconds (default 30)
  -h, --help            this text
`;

/** How long the `cowmap` process may linger after its report before it leaves anyway. */
const exitGraceMs = 3_000;

type Values = ReturnType<typeof parseArgs<{ args: string[]; options: typeof conformOptions; strict: true }>>['values'];

function levelOption(name: string, text: string | undefined): Level | null | undefined {
  if (text === undefined) return undefined;
  if ((levels as readonly string[]).includes(text)) return text as Level;
  return usageProblem(`${name} must be one of ${levels.join(', ')}, got '${text}'`);
}

/** The pinned geometry, or undefined, or null (bad usage, said). */
function geometryOption(values: Values): { regions: number; regionSize: number } | undefined | null {
  if (values.regions === undefined && values['region-size'] === undefined) return undefined;
  if (values.regions === undefined || values['region-size'] === undefined) {
    return usageProblem('--regions and --region-size go together');
  }
  const regions = integerOption('--regions', values.regions, 1, 2 ** 31 - 1);
  const regionSize = integerOption('--region-size', values['region-size'], 512, 2 ** 30);
  if (regions === null || regionSize === null) return null;
  if (regionSize % 512 !== 0) {
    return usageProblem(`--region-size must be a multiple of 512, got ${regionSize}`);
  }
  return { regions, regionSize };
}

function writeReports(values: Values, report: ConformanceReport): void {
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

/** The run's settings from the options, or null (bad usage, said on standard error). */
function settingsOf(values: Values): Settings | null {
  const onlyLevel = levelOption('--level', values.level);
  const upTo = levelOption('--up-to', values['up-to']);
  if (onlyLevel === null || upTo === null) return null;
  if (onlyLevel !== undefined && upTo !== undefined)
    return said('--level (one level) and --up-to (the levels up to one) go apart');
  const checks = values.check ?? [];
  const unknown = unknownCheckNames(checks);
  if (unknown.length > 0)
    return said(
      `--check: no check named ${unknown.join(', ')} (checks: ${allCheckIds().join(', ')}; or a kind: ${checkKinds.join(', ')})`,
    );
  const seed =
    values.seed === undefined ? randomInt(2 ** 31 - 1) : integerOption('--seed', values.seed, 0, 2 ** 31 - 1);
  const budget = integerOption('--time-budget', values['time-budget'] ?? String(defaultBudgetSeconds), 1, 86_400);
  const timeout = integerOption('--request-timeout', values['request-timeout'], 1, 3600);
  const geometry = geometryOption(values);
  if (seed === null || budget === null || timeout === null || geometry === null) return null;
  if (values.path !== undefined) {
    const generated = checks.length === 1 && /(^|\/)(fast-check|history)$/.test(checks[0]!);
    if (values.seed === undefined || geometry === undefined || !generated) {
      return said(
        '--path replays one fast-check counterexample: give it with --seed, --check (a fast-check or history check), --regions and --region-size, as the failure printed them',
      );
    }
  }
  const tracesDir = values.traces ?? bundledTracesDir;
  if (!existsSync(tracesDir)) return said(`--traces: no folder ${tracesDir}`);
  const extraTraces = values.trace ?? [];
  const missingTrace = extraTraces.find((file) => !existsSync(file));
  if (missingTrace !== undefined) return said(`--trace: no file ${missingTrace}`);
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

function said(detail: string): null {
  return usageProblem(detail);
}

async function conform(values: Values, sutCommand: string[]): Promise<number> {
  const settings = settingsOf(values);
  if (settings === null) return usageError('conform');
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

export const command: Command = {
  summary: 'run the conformance suite against an implementation',
  async run(argv) {
    const { own, command: sutCommand } = splitCommand(argv);
    if (own.includes('--help') || own.includes('-h')) {
      process.stdout.write(conformHelp);
      return 0;
    }
    const { values } = parseArgs({ args: own, options: conformOptions, strict: true });
    if (sutCommand.length === 0)
      return usageError(
        'conform',
        "conform needs the implementation's command after --, e.g. cowmap conform -- npx cowmap adapter",
      );
    try {
      return await conform(values, sutCommand);
    } catch (error) {
      // Never a stack trace: a trace that does not parse, a report that cannot be written, anything else.
      if (error instanceof TraceError) {
        process.stderr.write(`${error.message}\n`);
        return 2;
      }
      const { code, message } = errorOf(error);
      process.stderr.write(`${code}: ${message}\n`);
      return code === 'E_INTERNAL' ? 1 : 2;
    }
  },
};
