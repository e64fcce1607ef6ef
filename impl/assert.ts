// Assertions for invariants that hold unless impl/ itself is wrong. They throw an
// AssertionError, never a CowmapError: a caller cannot cause them and must not
// handle them.

import { AssertionError } from 'node:assert';

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionError({ message: `cowmap invariant: ${message}` });
}
