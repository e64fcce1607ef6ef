// Writes trace format v1: a header, `#` comments that say what the trace shows,
// and one record a line. Labels are used for data when the content has one.

import type { Op } from '../../model/types.ts';
import { traceVersion } from './trace.ts';
import type { CrashMode } from '../types.ts';

export interface TraceRecordWrite {
  readonly op: 'write';
  readonly region: string | number;
  readonly data: string | { readonly base64: string };
}

export type TraceRecord =
  | TraceRecordWrite
  | {
      readonly op: 'startCycle' | 'completeCycle' | 'cycle' | 'crash' | 'recover';
      readonly expectError?: string;
      readonly crashAfterIo?: number;
      readonly mode?: CrashMode;
      readonly seed?: number;
      readonly torn?: boolean;
    }
  | {
      readonly op: 'transfer';
      readonly region: string | number;
      readonly expectError?: string;
      readonly crashAfterIo?: number;
    }
  | { readonly expect: Record<string, unknown>; readonly at?: string }
  | { readonly comment: string };

export interface TraceHeaderWrite {
  readonly regions: number;
  readonly regionSize: number;
  readonly names?: readonly string[];
  readonly title?: string;
  readonly source?: string;
  readonly seed?: string | number;
  /** The features the trace needs (docs/traces.md): `consistent` for a run on volumes that keep a consistent image. */
  readonly features?: readonly string[];
}

export function formatTrace(
  header: TraceHeaderWrite,
  comments: readonly string[],
  records: readonly TraceRecord[],
): string {
  const lines = [JSON.stringify({ trace: 'cowmap', version: traceVersion, ...header })];
  for (const comment of comments) lines.push(`# ${comment}`);
  for (const record of records) {
    if ('comment' in record) lines.push(`# ${record.comment}`);
    else lines.push(JSON.stringify(record));
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Model operations as trace records. Write data is the model's content, which
 * for the explorer is a label; `names` gives the region names.
 */
export function recordsOfOps(
  ops: readonly Op[],
  names: readonly string[],
  rejected: (index: number) => string | null,
): TraceRecord[] {
  return ops.map((op, index) => {
    const expectError = rejected(index);
    const extra = expectError === null ? {} : { expectError };
    switch (op.type) {
      case 'write':
        return { op: 'write', region: names[op.region] ?? op.region, data: op.data, ...extra };
      case 'transfer':
        return { op: 'transfer', region: names[op.region] ?? op.region, ...extra };
      case 'read':
        throw new Error('writer: read is not a trace op');
      default:
        return { op: op.type, ...extra };
    }
  });
}
