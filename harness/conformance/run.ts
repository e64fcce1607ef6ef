// The conformance suite: any implementation, in any language, behind the adapter
// protocol (docs/adapter.md), judged level by level against the model
// (harness/conformance/plan.ts says which checks each level runs, budget.ts how
// the time budget is shared). One adapter process serves every check; the
// oracle judges states, codes, data, invariants and crash outcomes, and reports
// the wording of rejection messages as warnings (failures with strictMessages).

import { readFileSync } from 'node:fs';
import type { Geometry } from '../../model/types.ts';
import type { AdapterSutOptions } from '../adapter/adapterSutOptions.ts';
import { ProtocolError } from '../adapter/protocolError.ts';
import { conformGeometries, describeGeometry } from '../geometry.ts';
import { MessageWarnings, withMessageRule } from '../oracle/oracle.ts';
import { consistentVolumes, keptRunning } from '../sut/systemUnderTest.ts';
import type { Feature, SystemUnderTest } from '../sut/systemUnderTest.ts';
import { readTrace } from '../trace/reader.ts';
import { transitionCoverage } from '../transitionCoverage.ts';
import {
  checkAllotmentMs,
  checkWeights,
  Deadline,
  defaultBudgetSeconds,
  historyReserveMs,
  levelWeights,
  share,
  StepRate,
} from './budget.ts';
import { checkResult } from './context.ts';
import type { CheckContext, CheckTally } from './context.ts';
import { historyStepsEstimate, replayFuzzPath, runFuzzCheck, runHistoryCheck } from './fuzzChecks.ts';
import { runPathCheck } from './pathCheck.ts';
import { runSweepCheck } from './sweepCheck.ts';
import { isBounded, planLevels, traceRunsAt } from './plan.ts';
import type { CheckSpec, Level, LevelPlan } from './plan.ts';
import type { ProgressStatus } from './progress.ts';
import { budgetRuleSummary, cowmapVersion } from './report.ts';
import type { CheckResult, ConformanceReport, LevelResult } from './result.ts';
import { runProtocolCheck, runTraceCheck, traceEntry } from './wholeChecks.ts';
import type { TraceEntry } from './wholeChecks.ts';

export interface ConformanceOptions {
  /** The adapter command (for the replay commands printed and the protocol checks' own processes). */
  readonly command: readonly string[];
  /** The implementation, kept running across checks (an AdapterSut of `command`). */
  readonly sut: SystemUnderTest & {
    start?(): Promise<void>;
    readonly hello?: { readonly name: string; readonly version: string } | null;
  };
  /** The highest level (default power), or the only one with levelMode 'only'. */
  readonly level?: Level;
  readonly levelMode?: 'only' | 'upTo';
  /** `--check`: check ids (`crash/paths`) or kinds (`paths`); none: every check. */
  readonly checks?: readonly string[];
  readonly seed: number;
  /** The whole run's budget (default 240 s: see budget.ts for how it is shared). */
  readonly budgetSeconds?: number;
  /** Trace files. */
  readonly traces: readonly string[];
  /** The folder the bundled traces are in, so that cases are named by their path under it. */
  readonly tracesDir?: string;
  readonly failuresDir: string;
  /** The one-region path model and no geometry above a thousand regions. */
  readonly quick?: boolean;
  readonly keepGoing?: boolean;
  readonly strictMessages?: boolean;
  /** `--regions N --region-size B`: one geometry instead of the set. */
  readonly geometry?: Geometry;
  /** `--path`: replay one fast-check counterexample (needs one fast-check or history check and one geometry). */
  readonly fuzzPath?: string;
  readonly requestTimeoutMs?: number;
  readonly transcript?: AdapterSutOptions['transcript'];
  /** Aborting ends the run between units (and the caller kills the adapter to end one in flight). */
  readonly signal?: AbortSignal;
  readonly onProgress?: (status: ProgressStatus) => void;
}

/** A ProtocolError, or any error, as the report's error. */
export function errorOf(error: unknown): { code: string; message: string } {
  if (error instanceof ProtocolError)
    return { code: 'E_BAD_REQUEST', message: `the implementation broke adapter protocol 1: ${error.message}` };
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return { code: typeof code === 'string' && /^E_[A-Z_]+$/.test(code) ? code : 'E_INTERNAL', message };
}

/** The geometries a run uses: the pinned one, or the set (without the largest with quick). */
export function runGeometries(options: Pick<ConformanceOptions, 'geometry' | 'quick'>): Geometry[] {
  if (options.geometry !== undefined) return [options.geometry];
  return options.quick === true
    ? conformGeometries.filter((geometry) => geometry.regions < 1000)
    : [...conformGeometries];
}

interface SharedInputs {
  readonly features: ReadonlySet<Feature>;
  readonly traces: readonly TraceEntry[];
  readonly geometries: readonly Geometry[];
  readonly context: CheckContext;
  /** The same, whose volumes keep a consistent image (the level consistent). */
  readonly consistentContext: CheckContext;
}

/** One run; report() gives the report so far at any time (an interrupted run writes it). */
export class ConformanceRun {
  private readonly started = performance.now();
  private readonly startedAt = new Date().toISOString();
  private readonly budgetMs: number;
  private readonly runDeadline: Deadline;
  private readonly warnings = new MessageWarnings();
  private readonly hits = new Map<string, number>();
  private plans: LevelPlan[] = [];
  private readonly checksByLevel = new Map<Level, CheckResult[]>();
  /** Levels whose every selected check ran. */
  private readonly finished = new Set<Level>();
  private readonly levelRates = new Map<Level, StepRate>();
  private currentLevel: Level | null = null;
  private readonly geometriesRun = new Map<string, Geometry>();
  private error: { code: string; message: string } | null = null;
  private stepsDone = 0;
  private readonly runRate = new StepRate();
  private levelRate = this.runRate;
  private status: { level: string; check: string; detail: string } = { level: '-', check: 'starting', detail: 'hello' };

  constructor(readonly options: ConformanceOptions) {
    this.budgetMs = (options.budgetSeconds ?? defaultBudgetSeconds) * 1000;
    this.runDeadline = new Deadline(this.started + this.budgetMs);
  }

  get interrupted(): boolean {
    return this.options.signal?.aborted === true;
  }

  async run(): Promise<ConformanceReport> {
    const body = () => this.runLevels();
    try {
      await withMessageRule({ strict: this.options.strictMessages === true, warnings: this.warnings }, body);
    } catch (error) {
      // Killed to end a request in flight: not the implementation's fault.
      if (!this.interrupted) this.error = errorOf(error);
      // The user sees `CODE: message`; COWMAP_DEBUG=1 shows where cowmap met it.
      if (process.env.COWMAP_DEBUG === '1')
        process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    }
    if (!this.interrupted) {
      try {
        await this.options.sut.close();
      } catch (error) {
        this.error ??= errorOf(error);
      }
    }
    return this.report();
  }

  private progress(check: string, detail: string, steps?: number): void {
    this.status = { level: this.currentLevel ?? '-', check, detail };
    this.options.onProgress?.({
      ...this.status,
      steps: steps ?? this.stepsDone,
      elapsedSeconds: (performance.now() - this.started) / 1000,
      remainingSeconds: this.runDeadline.remainingMs() / 1000,
    });
  }

  /** What the checks share; with `consistent`, every volume created keeps a consistent image (docs/adapter.md). */
  private context(consistent = false): CheckContext {
    const options = this.options;
    const run = this;
    const sut = keptRunning(options.sut);
    return {
      command: options.command,
      sut: consistent ? consistentVolumes(sut) : sut,
      seed: options.seed,
      failuresDir: options.failuresDir,
      quick: options.quick === true,
      keepGoing: options.keepGoing === true,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      ...(options.transcript === undefined ? {} : { transcript: options.transcript }),
      ...(options.fuzzPath === undefined ? {} : { fuzzPath: options.fuzzPath }),
      budgetMs: this.budgetMs,
      runDeadline: this.runDeadline,
      get rate() {
        return run.levelRate;
      },
      hits: this.hits,
      interrupted: () => run.interrupted,
      get stepsDone() {
        return run.stepsDone;
      },
      set stepsDone(value: number) {
        run.stepsDone = value;
      },
      progress: (check, detail, steps) => run.progress(check, detail, steps),
    };
  }

  /**
   * Two phases: first the cheap checks of every level (traces, protocol rules),
   * run whole, then the bounded checks level by level, sharing what is left of
   * the budget. So the shares are cut from the time that is really left, and a
   * cheap check that fails ends the run before any long one starts.
   */
  private async runLevels(): Promise<void> {
    const options = this.options;
    const traces = options.traces.map((file) =>
      traceEntry(readTrace(readFileSync(file, 'utf8'), file), options.tracesDir ?? null),
    );
    await options.sut.start?.();
    const features = options.sut.features;
    const shared = {
      features,
      traces,
      geometries: runGeometries(options),
      context: this.context(),
      consistentContext: this.context(true),
    };
    this.plans = planLevels(options.level ?? 'power', options.levelMode ?? 'upTo', features, options.checks ?? []);
    const active = this.plans.filter((plan) => plan.skipped === null);
    for (const plan of active) {
      for (const spec of plan.specs.filter((item) => !isBounded(item.kind))) {
        if (this.stopped()) return;
        await this.runCheck(plan.level, spec, null, shared);
      }
      if (plan.specs.every((item) => !isBounded(item.kind))) this.finished.add(plan.level);
    }
    const withBounded = active.filter((plan) => plan.specs.some((item) => isBounded(item.kind)));
    for (const [index, plan] of withBounded.entries()) {
      if (this.stopped()) return;
      const levelsLeft = withBounded.slice(index).reduce((sum, next) => sum + levelWeights[next.level], 0);
      const levelDeadline = new Deadline(
        Math.min(
          this.runDeadline.atMs,
          performance.now() + share(this.runDeadline.remainingMs(), levelWeights[plan.level], levelsLeft),
        ),
      );
      const bounded = plan.specs.filter((item) => isBounded(item.kind));
      const reserveMs = bounded.some((item) => item.kind === 'history')
        ? historyReserveMs(levelDeadline.remainingMs(), this.rateOf(plan.level).estimateMs(historyStepsEstimate))
        : 0;
      for (const [at, spec] of bounded.entries()) {
        if (this.stopped()) return;
        const checksLeft = bounded.slice(at).reduce((sum, next) => sum + checkWeights[next.kind], 0);
        const allotmentMs = checkAllotmentMs(spec.kind, levelDeadline.remainingMs(), checksLeft, reserveMs);
        await this.runCheck(plan.level, spec, allotmentMs, shared, levelDeadline);
      }
      this.finished.add(plan.level);
    }
  }

  /** Interrupted, or a check failed and --keep-going was not given. */
  private stopped(): boolean {
    if (this.interrupted) return true;
    return (
      !this.options.keepGoing &&
      [...this.checksByLevel.values()].some((checks) => checks.some((check) => check.status === 'failed'))
    );
  }

  /** The cheap checks stop at the run's deadline, except with --quick (make test's smoke runs: every trace, whatever the budget). */
  private cheapDeadline(): Deadline | null {
    return this.options.quick === true ? null : this.runDeadline;
  }

  private rateOf(level: Level): StepRate {
    let rate = this.levelRates.get(level);
    if (rate === undefined) {
      rate = new StepRate(this.runRate);
      this.levelRates.set(level, rate);
    }
    return rate;
  }

  private async runCheck(
    level: Level,
    spec: CheckSpec,
    allotmentMs: number | null,
    shared: SharedInputs,
    levelDeadline?: Deadline,
  ): Promise<void> {
    this.currentLevel = level;
    this.levelRate = this.rateOf(level);
    const started = performance.now();
    let tally: CheckTally;
    const context = level === 'consistent' ? shared.consistentContext : shared.context;
    if (allotmentMs !== null) {
      const deadline = new Deadline(Math.min(levelDeadline!.atMs, started + allotmentMs));
      tally = await this.runBounded(spec, deadline, shared.geometries, context);
    } else if (spec.kind === 'traces') {
      const selected = shared.traces.filter(({ trace }) => traceRunsAt(trace, level, shared.features));
      tally = await runTraceCheck(spec, selected, this.cheapDeadline(), context);
    } else {
      tally = await runProtocolCheck(spec, this.cheapDeadline(), context);
    }
    for (const geometry of tally.geometries) this.geometriesRun.set(describeGeometry(geometry), geometry);
    const checks = this.checksByLevel.get(level) ?? [];
    checks.push(checkResult(spec, tally, describeGeometry, (performance.now() - started) / 1000, allotmentMs));
    this.checksByLevel.set(level, checks);
  }

  private runBounded(
    spec: CheckSpec,
    deadline: Deadline,
    geometries: readonly Geometry[],
    context: CheckContext,
  ): Promise<CheckTally> {
    if (this.options.fuzzPath !== undefined)
      return replayFuzzPath(spec, geometries[0]!, this.options.fuzzPath, context);
    switch (spec.kind) {
      case 'paths':
        return runPathCheck(spec, geometries, deadline, context);
      case 'sweep':
        return runSweepCheck(spec, geometries, deadline, context);
      case 'history':
        return runHistoryCheck(spec, geometries, deadline, context);
      default:
        return runFuzzCheck(spec, geometries, deadline, context);
    }
  }

  private levelResult(plan: LevelPlan): LevelResult {
    if (plan.skipped !== null)
      return { level: plan.level, status: plan.skipped.status, reason: plan.skipped.reason, checks: [], seconds: 0 };
    const checks = this.checksByLevel.get(plan.level) ?? [];
    const seconds = checks.reduce((sum, check) => sum + check.seconds, 0);
    if (checks.some((check) => check.status === 'failed'))
      return { level: plan.level, status: 'failed', reason: null, checks, seconds };
    if (this.finished.has(plan.level)) return { level: plan.level, status: 'passed', reason: null, checks, seconds };
    const reason = this.interrupted
      ? 'interrupted'
      : this.error !== null
        ? 'stopped by an error'
        : this.stopped()
          ? 'an earlier check failed; --keep-going runs every check'
          : 'running';
    return { level: plan.level, status: 'not run', reason, checks, seconds };
  }

  /** The report as it stands: complete after run(), partial (marked interrupted) before. */
  report(): ConformanceReport {
    const options = this.options;
    const levels = this.plans.map((plan) => this.levelResult(plan));
    const checks = levels.flatMap((level) => level.checks);
    const hello = options.sut.hello ?? null;
    const interrupted = this.interrupted;
    return {
      cowmapVersion,
      protocol: 1,
      startedAt: this.startedAt,
      implementation: {
        name: hello?.name ?? options.sut.name,
        version: hello?.version ?? null,
        command: options.command,
      },
      command: options.command,
      features: [...options.sut.features],
      seed: options.seed,
      geometries: [...this.geometriesRun.keys()],
      budget: {
        seconds: this.budgetMs / 1000,
        rule: budgetRuleSummary,
        cutChecks: checks.filter((check) => check.cutByBudget).map((check) => check.id),
      },
      strictMessages: options.strictMessages === true,
      levels,
      warnings: { messages: { count: this.warnings.count, examples: this.warnings.examples } },
      coverage: transitionCoverage(this.hits),
      interrupted,
      error: this.error,
      conforms:
        !interrupted &&
        this.error === null &&
        levels.every((level) => level.status !== 'failed') &&
        levels.some((level) => level.status === 'passed'),
      seconds: (performance.now() - this.started) / 1000,
      steps: checks.reduce((sum, check) => sum + check.steps, 0),
      crashPoints: checks.reduce((sum, check) => sum + check.crashPoints, 0),
    };
  }
}

export async function runConformance(options: ConformanceOptions): Promise<ConformanceReport> {
  return new ConformanceRun(options).run();
}
