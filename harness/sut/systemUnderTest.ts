// The implementation under test, behind one interface: a volume in this process
// (volumeSut.ts: the reference on real files, the exploration's in memory), or
// any implementation driven through the adapter protocol (docs/adapter.md). Every
// generator, the replay and the conformance runner use it.

import type { Geometry, Op } from '../../model/types.ts';
import { OracleFailure } from '../oracle/oracleFailure.ts';
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

/** What a create may ask beyond the geometry. */
export interface CreateChoice {
  /** A secondary that keeps a consistent image (feature `consistent`, docs/protocol.md section 10). */
  readonly consistent?: boolean;
}

export interface SystemUnderTest {
  readonly name: string;
  readonly features: ReadonlySet<Feature>;
  /** A fresh, empty volume (the previous one, if any, is closed and forgotten). */
  create(geometry: Geometry, choice?: CreateChoice): Promise<void>;
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
    create: (geometry, choice) => sut.create(geometry, choice),
    apply: (op) => sut.apply(op),
    applyCrashing: (op, crash) => sut.applyCrashing(op, crash),
    state: () => sut.state(),
    crash: () => sut.crash(),
    recover: () => sut.recover(),
    close: async () => {},
  };
}

/**
 * The same implementation, every volume of which keeps a consistent image (the
 * conformance level consistent, a replay of a trace that needs one): each create
 * asks for it where the feature is offered, and then a state without D is a failure
 * of the implementation. Where it is not offered, the volumes are as before.
 */
export function consistentVolumes(sut: SystemUnderTest & { start?(): Promise<void> }): SystemUnderTest {
  let offered = false;
  const wrapped: SystemUnderTest = {
    name: sut.name,
    get features() {
      return sut.features;
    },
    create: async (geometry) => {
      // An adapter knows its features once it has said hello.
      await sut.start?.();
      offered = sut.features.has('consistent');
      await sut.create(geometry, offered ? { consistent: true } : {});
    },
    apply: (op) => sut.apply(op),
    applyCrashing: (op, crash) => sut.applyCrashing(op, crash),
    state: async () => {
      const state = await sut.state();
      if (offered && state.consistent === undefined)
        throw new OracleFailure(
          'sut',
          'the implementation offers consistent but its state reports no consistent image',
        );
      return state;
    },
    crash: () => sut.crash(),
    recover: () => sut.recover(),
    close: () => sut.close(),
  };
  consistentWrappers.add(wrapped);
  return wrapped;
}

const consistentWrappers = new WeakSet<SystemUnderTest>();

/**
 * Whether `sut` creates volumes that keep a consistent image (consistentVolumes): a
 * trace saved from a run on it needs the feature (its header's `features`, docs/traces.md).
 */
export function createsConsistentVolumes(sut: SystemUnderTest | null): boolean {
  return sut !== null && consistentWrappers.has(sut);
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
