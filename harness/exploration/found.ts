// A failing run as the exploration finds it: the prefix state it started from,
// the crash it made, and the steps it ran, enough to run it again from scratch
// (failureTrace.ts) and to say it in words.

import type { OracleFailure } from '../oracle/oracle.ts';
import type { ScenarioStep } from '../scenario.ts';
import type { SutOp } from '../sut/systemUnderTest.ts';
import { asFailure } from '../sut/thrown.ts';
import type { ChoiceShape } from '../sut/volumeSutOptions.ts';
import type { Choice } from './choices.ts';
import type { PrefixNode } from './prefixes.ts';

/** The power loss after a process crash, recovery and a finished cycle. */
export interface PowerLossAfterRecovery {
  /** A seed whose coins drop every unsynced record there, or null: none found, explicit choices used. */
  readonly seed: number | null;
}

/** One failing crash run, as found: enough to rerun it from scratch. */
export interface FoundFailure {
  readonly error: OracleFailure;
  readonly node: PrefixNode;
  /** The crashing operation, or null for a crash between operations (or no crash at all). */
  readonly op: SutOp | null;
  /** The operation that failed without a crash (choice null), or null. */
  readonly plainOp: SutOp | null;
  readonly crashAfterIo: number | null;
  readonly choice: Choice | null;
  readonly shape: ChoiceShape | null;
  /** The steps after the prefix, as run up to the failing one. */
  readonly steps: readonly ScenarioStep[];
  /** Set when the failure came at or after the power loss that follows a process crash's recovery. */
  readonly powerLoss?: PowerLossAfterRecovery;
  /** A case trace format v1 cannot say (inside create or recovery, rot): what was done, in words. */
  readonly special?: string;
}

/**
 * A failure that trace format v1 cannot say (a crash inside create or recovery,
 * rot, a volume that cannot be made): `label` says the case in words.
 */
export function foundInWords(
  node: PrefixNode,
  label: string,
  error: unknown,
  crash: Pick<FoundFailure, 'crashAfterIo' | 'choice' | 'shape' | 'steps' | 'op'> | null = null,
): FoundFailure {
  return {
    error: asFailure(error, label),
    node,
    op: crash?.op ?? null,
    plainOp: null,
    crashAfterIo: crash?.crashAfterIo ?? null,
    choice: crash?.choice ?? null,
    shape: crash?.shape ?? null,
    steps: crash?.steps ?? [],
    special: label,
  };
}
