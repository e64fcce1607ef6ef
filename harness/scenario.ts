// A scenario: a list of steps run through the oracle against one implementation,
// recorded as it runs so that a failing scenario becomes a v1 trace that
// `cowmap replay` reproduces. Path tests, fast-check sequences and the crash
// exploration all run their cases through here.

import { judge } from '../model/rules.ts';
import type { Geometry } from '../model/types.ts';
import { Oracle, OracleFailure } from './oracle/oracle.ts';
import type { Difference, OracleStats } from './oracle/oracle.ts';
import type { CrashRequest, SutOp, SystemUnderTest } from './sut/systemUnderTest.ts';
import { modelOpOf } from './sut/systemUnderTest.ts';
import type { ContentBook } from './trace/content.ts';
import { defaultNames } from './trace/reader.ts';
import { formatTrace } from './trace/writer.ts';
import type { TraceRecord } from './trace/writer.ts';

export type ScenarioStep =
  | { readonly kind: 'op'; readonly op: SutOp }
  | { readonly kind: 'crash' }
  | { readonly kind: 'recover' }
  | { readonly kind: 'crashInside'; readonly op: SutOp; readonly crash: CrashRequest };

export interface ScenarioFailure {
  readonly stepIndex: number;
  readonly message: string;
  readonly differences: readonly Difference[];
}

export interface ScenarioResult {
  readonly failure: ScenarioFailure | null;
  /** The steps run, as trace records (with the expectError the model gave). */
  readonly records: readonly TraceRecord[];
  readonly stats: OracleStats;
  readonly covered: ReadonlySet<string>;
}

export function describeScenarioStep(step: ScenarioStep, book?: ContentBook): string {
  if (step.kind === 'crash' || step.kind === 'recover') return step.kind;
  const op = step.op;
  let text: string = op.type;
  if ('region' in op) text += ` ${op.region}`;
  if (op.type === 'write') text += ` ${book?.show(book.addBytes(op.data)) ?? `${op.data.length} bytes`}`;
  if (op.type === 'read') text += ` ${op.volume}`;
  if (step.kind === 'crashInside')
    text += ` (crash after io ${step.crash.afterIo}, ${step.crash.mode}${step.crash.torn ? ' torn' : ''}, seed ${step.crash.seed})`;
  return text;
}

function dataRecord(data: Uint8Array, book: ContentBook): string | { base64: string } {
  const label = book.labelOf(book.addBytes(data));
  return label ?? { base64: Buffer.from(data).toString('base64') };
}

function opRecord(
  op: SutOp,
  book: ContentBook,
  names: readonly string[],
  extra: Record<string, unknown>,
): TraceRecord | null {
  const region = 'region' in op ? (names[op.region] ?? op.region) : undefined;
  switch (op.type) {
    case 'write':
      return { op: 'write', region: region!, data: dataRecord(op.data, book), ...extra } as TraceRecord;
    case 'transfer':
      return { op: 'transfer', region: region!, ...extra } as TraceRecord;
    case 'startCycle':
    case 'completeCycle':
      return { op: op.type, ...extra } as TraceRecord;
    case 'read':
      return null; // not a step of trace format v1; a read checks bytes and changes nothing
  }
}

/**
 * Runs the steps on a fresh volume of `geometry` in `sut`, through the oracle.
 * `book` must know the labels of the data written, for a readable trace.
 */
export async function runScenario(
  sut: SystemUnderTest | null,
  geometry: Geometry,
  steps: readonly ScenarioStep[],
  book: ContentBook,
): Promise<ScenarioResult> {
  const oracle = new Oracle(geometry, book, sut);
  const names = defaultNames(geometry.regions);
  const records: TraceRecord[] = [];
  let failure: ScenarioFailure | null = null;
  let index = 0;
  try {
    await oracle.start();
    for (; index < steps.length; index++) {
      const step = steps[index]!;
      const label = `step ${index + 1} '${describeScenarioStep(step, book)}'`;
      if (step.kind === 'crashInside') {
        const crash = step.crash;
        const extra = {
          crashAfterIo: crash.afterIo,
          mode: crash.mode,
          ...(crash.mode === 'power' ? { seed: crash.seed } : {}),
          ...(crash.torn ? { torn: true } : {}),
        };
        const record = opRecord(step.op, book, names, extra);
        if (record !== null) records.push(record);
        await oracle.stepCrashing(step.op, crash, label);
        continue;
      }
      const op = step.kind === 'op' ? step.op : { type: step.kind };
      // The record goes in before the step runs, so that a failing step is in the trace.
      const rejection = judge(oracle.state, modelOpOf(op, book));
      const expectError = rejection === null ? {} : { expectError: rejection.code };
      if (step.kind === 'op') {
        const record = opRecord(step.op, book, names, expectError);
        if (record !== null) records.push(record);
      } else {
        records.push({ op: step.kind, ...expectError } as TraceRecord);
      }
      await oracle.step(op, label, null);
    }
  } catch (error) {
    if (!(error instanceof OracleFailure)) throw error;
    failure = { stepIndex: index, message: error.message, differences: error.differences };
  } finally {
    if (sut !== null) await sut.close();
  }
  return { failure, records, stats: oracle.stats, covered: oracle.covered };
}

/**
 * The trace of a scenario's records, with comments that say where it came from and
 * what failed, and the features it needs (`consistent` when the run's volumes kept a
 * consistent image, so that a replay compares D again: docs/traces.md). A scenario that failed on a step with `crashAfterIo` (say the
 * operation made fewer I/O calls, completed, and its state was wrong) stops before
 * the `recover` that docs/traces.md requires after such a step: it is added, so that the
 * trace is valid; a replay fails on the crash step, before reaching it.
 */
export function scenarioTrace(
  geometry: Geometry,
  records: readonly TraceRecord[],
  title: string,
  comments: readonly string[],
  seed?: string | number,
  features: readonly string[] = [],
): string {
  const header = {
    regions: geometry.regions,
    regionSize: geometry.regionSize,
    names: defaultNames(geometry.regions),
    title,
    ...(seed === undefined ? {} : { seed }),
    ...(features.length === 0 ? {} : { features }),
  };
  const last = records.at(-1);
  const endsOnCrash = last !== undefined && 'crashAfterIo' in last && last.crashAfterIo !== undefined;
  return formatTrace(header, comments, endsOnCrash ? [...records, { op: 'recover' } as TraceRecord] : records);
}
