// Trace format version 1 (docs/traces.md), as the harness holds it once read.

import { type ErrorCode as VolumeErrorCode, errorCodes as volumeErrorCodes } from '../../impl/errors.ts';
import type { CrashMode } from '../types.ts';

export const traceVersion = 1;

/**
 * The codes a step may expect (docs/traces.md, `expectError`): every code of
 * docs/protocol.md section 2 but E_IO, a failing storage call, which no trace can
 * ask an implementation for.
 */
export type ErrorCode = Exclude<VolumeErrorCode, 'E_IO'>;
export const errorCodes: readonly ErrorCode[] = volumeErrorCodes.filter((code): code is ErrorCode => code !== 'E_IO');

export interface TraceHeader {
  readonly trace: 'cowmap';
  readonly version: number;
  readonly regions: number;
  readonly regionSize: number;
  readonly names: readonly string[];
  readonly title?: string;
  readonly source?: string;
  readonly seed?: string | number;
  /**
   * The optional features of docs/adapter.md section 5 an implementation needs for the
   * trace to check all it says (`consistent`: its `consistent` expectations are
   * compared with the implementation's D too, not only the model's).
   */
  readonly features?: readonly string[];
}

export type StepOp = 'write' | 'startCycle' | 'transfer' | 'completeCycle' | 'cycle' | 'crash' | 'recover';

/** Region data: a label (UTF-8 then zeros) or raw bytes from base64. */
export type TraceData = { readonly label: string } | { readonly base64: string };

export interface CrashPoint {
  readonly afterIo: number;
  readonly mode: CrashMode;
  readonly seed: number;
  /** Project extension: with mode power, unsynced sector writes may also be torn. */
  readonly torn: boolean;
}

export interface OpStep {
  readonly kind: 'op';
  readonly line: number;
  readonly op: StepOp;
  /** The region index (names resolved); may be out of range, to test E_RANGE. */
  readonly region?: number;
  readonly data?: TraceData;
  readonly expectError?: ErrorCode;
  readonly crashAt?: CrashPoint;
}

/** One expected region content: a label, an encoded content, a list of allowed ones, or null (empty COW slot). */
export type ExpectedContent = TraceData | null | readonly (TraceData | null)[];

export interface Expectation {
  readonly phase?: 'idle' | 'replicating';
  readonly primary?: readonly ExpectedContent[];
  readonly secondary?: readonly ExpectedContent[];
  readonly cow?: readonly ExpectedContent[];
  readonly current?: string;
  readonly next?: string;
  /** D, the far side's consistent image (docs/protocol.md section 10). */
  readonly consistent?: readonly ExpectedContent[];
}

export interface ExpectStep {
  readonly kind: 'expect';
  readonly line: number;
  readonly expect: Expectation;
  readonly at?: string;
}

export type TraceStep = OpStep | ExpectStep;

export interface Trace {
  readonly file: string;
  readonly header: TraceHeader;
  readonly steps: readonly TraceStep[];
}

export function describeStep(step: OpStep, names: readonly string[]): string {
  const parts: string[] = [step.op];
  if (step.region !== undefined) parts.push(names[step.region] ?? String(step.region));
  if (step.data !== undefined)
    parts.push('label' in step.data ? step.data.label : `base64:${step.data.base64.slice(0, 12)}`);
  if (step.crashAt !== undefined)
    parts.push(`(crash after io ${step.crashAt.afterIo}, ${step.crashAt.mode}${step.crashAt.torn ? ', torn' : ''})`);
  if (step.expectError !== undefined) parts.push(`expecting ${step.expectError}`);
  return parts.join(' ');
}
