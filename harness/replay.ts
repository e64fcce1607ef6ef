// Replays a trace (docs/traces.md) on the model, or on the model and an implementation
// side by side: every `expect` and `expectError`, every invariant after every step,
// and the implementation's state against the model's after every step.
//
// Model-only, a step with crashAfterIo forks the replay: the rest of the trace runs
// once for every recovered state the model allows, and each run must pass.
//
// A trace whose header says it needs the feature `consistent` (docs/traces.md) runs
// on volumes that keep a consistent image (consistentVolumes), so that the
// implementation's D is compared with the model's after every step.

import { ModelError } from '../model/modelError.ts';
import type { ModelSnapshot, Statechart } from '../model/transitions.ts';
import { Oracle, OracleFailure, withMessageRule } from './oracle/oracle.ts';
import type { Difference, MessageRule, OracleStats } from './oracle/oracle.ts';
import { consistentVolumes, createsConsistentVolumes } from './sut/systemUnderTest.ts';
import type { SutOp, SystemUnderTest } from './sut/systemUnderTest.ts';
import { ContentBook } from './trace/content.ts';
import { checkExpectation, contentOf } from './trace/expectation.ts';
import { describeStep } from './trace/trace.ts';
import type { OpStep, Trace } from './trace/trace.ts';

export interface ReplayFailure {
  readonly file: string;
  readonly line: number;
  readonly step: string;
  readonly message: string;
  readonly differences: readonly Difference[];
  readonly observedBy: 'model' | 'implementation';
}

export interface ReplayResult {
  readonly file: string;
  readonly failure: ReplayFailure | null;
  readonly stats: OracleStats;
  readonly covered: ReadonlySet<string>;
  /** Runs of the trace: 1, plus one for every extra crash outcome a model-only replay followed. */
  readonly branches: number;
}

export const branchesMax = 256;

export interface ReplayOptions {
  /** How rejection messages are judged (see withMessageRule). */
  readonly messages?: MessageRule;
  /** The model to replay on: the statechart by default; a test plants a broken one. */
  readonly statechart?: Statechart<ModelSnapshot>;
}

interface ReplayContext {
  readonly trace: Trace;
  readonly sut: SystemUnderTest | null;
  branches: number;
}

function sutOp(step: OpStep, oracle: Oracle): SutOp {
  switch (step.op) {
    case 'write': {
      const content = contentOf(step.data!, oracle.book);
      return { type: 'write', region: step.region!, data: oracle.book.bytesOf(content)! };
    }
    case 'transfer':
      return { type: 'transfer', region: step.region! };
    case 'startCycle':
    case 'completeCycle':
      return { type: step.op };
    default:
      throw new Error(`replay: ${step.op} is not an implementation operation`);
  }
}

async function runCycle(step: OpStep, oracle: Oracle, label: string): Promise<void> {
  const started = await oracle.step({ type: 'startCycle' }, `${label}: startCycle`, step.expectError);
  if (!started.ok) return;
  const current = oracle.state.current;
  for (let region = 0; region < current.length; region++) {
    if (current[region]) await oracle.step({ type: 'transfer', region }, `${label}: transfer ${region}`);
  }
  await oracle.step({ type: 'completeCycle' }, `${label}: completeCycle`);
}

async function runFrom(context: ReplayContext, oracle: Oracle, fromIndex: number): Promise<ReplayFailure | null> {
  const { trace } = context;
  const names = trace.header.names;
  let lastStep = 'the start';
  for (let index = fromIndex; index < trace.steps.length; index++) {
    const step = trace.steps[index]!;
    const describe =
      step.kind === 'op' ? describeStep(step, names) : `expect${step.at === undefined ? '' : ` at ${step.at}`}`;
    try {
      if (step.kind === 'expect') {
        const differences = checkExpectation(oracle.state, step.expect, oracle.book);
        if (differences.length > 0)
          throw new OracleFailure('expect', `${describe} failed after ${lastStep}`, differences);
        continue;
      }
      lastStep = `'${describe}' (line ${step.line})`;
      const label = `line ${step.line} '${describe}'`;
      if (step.crashAt !== undefined) {
        const outcomes = await oracle.stepCrashing(sutOp(step, oracle), step.crashAt, label);
        if (context.sut === null) {
          for (const outcome of outcomes.slice(1)) {
            context.branches++;
            if (context.branches > branchesMax)
              throw new OracleFailure('sut', `more than ${branchesMax} crash branches`);
            const failure = await runFrom(context, oracle.fork(outcome), index + 1);
            if (failure !== null) return failure;
          }
        }
      } else if (step.op === 'cycle') {
        await runCycle(step, oracle, label);
      } else if (step.op === 'crash' || step.op === 'recover') {
        await oracle.step({ type: step.op }, label, step.expectError);
      } else {
        await oracle.step(sutOp(step, oracle), label, step.expectError);
      }
    } catch (error) {
      const failure = failureOf(error, step.line, describe);
      if (failure === null) throw error;
      return { file: trace.file, ...failure };
    }
  }
  return null;
}

/**
 * A failed check, or a broken model (a ModelError the oracle did not already turn
 * into a failure), as the failure of the trace's line; null for any other error.
 */
function failureOf(error: unknown, line: number, step: string): Omit<ReplayFailure, 'file'> | null {
  if (error instanceof ModelError) {
    const message = `line ${line} '${step}': the model itself is broken: ${error.message}`;
    return { line, step, message, differences: [], observedBy: 'model' };
  }
  if (!(error instanceof OracleFailure)) return null;
  const observedBy = error.kind === 'divergence' || error.kind === 'crash-outcome' ? 'implementation' : 'model';
  return { line, step, message: error.message, differences: error.differences, observedBy };
}

/**
 * Replays a trace; `options.messages` sets how rejection messages are judged (by
 * default: strictly for the reference implementation, with warnings for one
 * behind the adapter; see withMessageRule). A broken model fails the trace at the
 * line where it broke, like any other check.
 */
export async function replayTrace(
  trace: Trace,
  sut: SystemUnderTest | null,
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const messages = options.messages;
  const replay = () => replayOn(trace, sut, options);
  return messages === undefined ? replay() : withMessageRule(messages, replay);
}

/**
 * The implementation the trace runs on: for a trace that needs the consistent image,
 * volumes that keep one (the reference's and an adapter's alike), unless they already do.
 */
function replayTarget(trace: Trace, sut: SystemUnderTest | null): SystemUnderTest | null {
  if (sut === null || createsConsistentVolumes(sut)) return sut;
  return trace.header.features?.includes('consistent') === true ? consistentVolumes(sut) : sut;
}

async function replayOn(trace: Trace, given: SystemUnderTest | null, options: ReplayOptions): Promise<ReplayResult> {
  const sut = replayTarget(trace, given);
  const book = new ContentBook(trace.header.regionSize);
  const geometry = { regions: trace.header.regions, regionSize: trace.header.regionSize };
  const oracle = new Oracle(geometry, book, sut, undefined, { statechart: options.statechart });
  const context: ReplayContext = { trace, sut, branches: 1 };
  let failure: ReplayFailure | null;
  try {
    await oracle.start();
    failure = await runFrom(context, oracle, 0);
  } finally {
    if (sut !== null) await sut.close();
  }
  return { file: trace.file, failure, stats: oracle.stats, covered: oracle.covered, branches: context.branches };
}

/** A failure as a reader wants it: the file and line, the step, then expected and observed side by side. */
export function formatFailure(failure: ReplayFailure): string {
  return [
    `${failure.file}:${failure.line}: ${failure.step}`,
    `  ${failure.message}`,
    ...formatDifferences(failure.differences, failure.observedBy),
  ].join('\n');
}

/** The expected / observed table of a failure (no lines when nothing differs field by field). */
export function formatDifferences(
  differences: readonly Difference[],
  observedBy: 'model' | 'implementation',
): string[] {
  if (differences.length === 0) return [];
  const fieldWidth = Math.max(5, ...differences.map((d) => d.field.length));
  const expectedWidth = Math.max(8, ...differences.map((d) => d.expected.length));
  const observedTitle = observedBy === 'model' ? 'observed (model)' : 'observed (implementation)';
  return [
    `  ${'field'.padEnd(fieldWidth)}  ${'expected'.padEnd(expectedWidth)}  ${observedTitle}`,
    ...differences.map(
      (difference) =>
        `  ${difference.field.padEnd(fieldWidth)}  ${difference.expected.padEnd(expectedWidth)}  ${difference.observed}`,
    ),
  ];
}
