// The implementation under test, behind one interface: a volume in this process
// (volumeSut.ts: the reference on real files, the exploration's in memory), or
// any implementation driven through the adapter protocol (docs/adapter.md). Every
// generator, the replay and the conformance runner use it.

import type { Geometry, Op } from '../../model/types.ts';
import type { ContentBook } from '../trace/content.ts';
import type { CrashMode } from '../types.ts';

/** The state an implementation reports (docs/protocol.md section 6; the adapter's `state` op). */
export interface SutState {
  readonly phase: 'idle' | 'replicating';
  readonly current: string;
  readonly next: string;
  readonly cow: string;
  /** Lower-case hex SHA-256 digests of each region. */
  readonly primary: readonly string[];
  readonly secondary: readonly string[];
  readonly cowData: readonly (string | null)[];
  /**
   * D, the consistent image of the secondary (docs/protocol.md section 10), one digest a
   * region: only from an implementation that offers the feature `consistent`.
   */
  readonly consistent?: readonly string[];
}

export type SutOp =
  | { readonly type: 'write'; readonly region: number; readonly data: Uint8Array }
  | { readonly type: 'read'; readonly region: number; readonly volume: 'primary' | 'secondary' }
  | { readonly type: 'startCycle' }
  | { readonly type: 'transfer'; readonly region: number }
  | { readonly type: 'completeCycle' };

export type SutReply =
  | { readonly ok: true; readonly data?: Uint8Array; readonly io?: number }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly io?: number };

export interface CrashRequest {
  /** Crash right after the k-th durable I/O call of the operation (0: before the first). */
  readonly afterIo: number;
  readonly mode: CrashMode;
  readonly seed: number;
  readonly torn: boolean;
}

/** An operation with a failpoint either crashed inside or completed (and the crash then follows it). */
export type CrashingReply = { readonly crashed: true } | { readonly crashed: false; readonly reply: SutReply };

export type Feature = 'failpoint' | 'power-loss' | 'torn' | 'consistent';

export interface SystemUnderTest {
  readonly name: string;
  readonly features: ReadonlySet<Feature>;
  /** A fresh, empty volume (the previous one, if any, is closed and forgotten). */
  create(geometry: Geometry): Promise<void>;
  apply(op: SutOp): Promise<SutReply>;
  /** Applies `op` with a failpoint armed; when the op completes first, the crash follows it. */
  applyCrashing(op: SutOp, crash: CrashRequest): Promise<CrashingReply>;
  state(): Promise<SutState>;
  /** A crash between operations (a kill). */
  crash(): Promise<void>;
  /** Reopens the volume after a crash; recovery runs inside. */
  recover(): Promise<SutReply>;
  close(): Promise<void>;
}

/**
 * The same implementation, whose close() does nothing: the next create() ends the
 * volume, and the process (an adapter's) serves every run of a check.
 */
export function keptRunning(sut: SystemUnderTest): SystemUnderTest {
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

/** The model's operation for a harness operation: a write's bytes become a content of the book. */
export function modelOpOf(
  op: SutOp | { readonly type: 'crash' } | { readonly type: 'recover' },
  book: ContentBook,
): Op {
  return op.type === 'write'
    ? { type: 'write', region: op.region, data: book.addBytes(op.data), size: op.data.length }
    : op;
}
