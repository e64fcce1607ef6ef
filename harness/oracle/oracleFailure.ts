// What a failed check of the oracle carries: its kind, the message, and the
// fields where expected and observed differ, side by side.

import type { Violation } from '../../model/invariants.ts';

export interface Difference {
  readonly field: string;
  readonly expected: string;
  readonly observed: string;
}

/** `model`: the model itself is broken (a ModelError: the statechart and the rules disagree, say). */
export type FailureKind = 'expectError' | 'invariant' | 'divergence' | 'crash-outcome' | 'expect' | 'sut' | 'model';

/** A check that failed: what was expected, what was observed, side by side. */
export class OracleFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly differences: readonly Difference[] = [],
    readonly violations: readonly Violation[] = [],
  ) {
    super(message);
    this.name = 'OracleFailure';
  }
}
