// How long the long node tests run: the one place that reads COWMAP_TEST_LEVEL.
//
// `make test` (and so CI) runs them at the quick level, so that the whole of it
// stays under 5 minutes on 2 cores; `make verify` runs the files that use this
// module again with COWMAP_TEST_LEVEL=full, at the budgets they were written
// with. A test picks its budget with `atLevel(quick, full)`; at either level it
// keeps every assertion, and a random test keeps printing its seed.
// Test-only: nothing outside *.test.ts imports this file.

export type TestLevel = 'quick' | 'full';

export const testLevelVariable = 'COWMAP_TEST_LEVEL';

function readLevel(): TestLevel {
  const value = process.env[testLevelVariable];
  if (value === undefined || value === '' || value === 'quick') return 'quick';
  if (value === 'full') return 'full';
  throw new Error(`${testLevelVariable}=${value}: expected quick or full`);
}

export const testLevel: TestLevel = readLevel();

/** `quick` at the quick level (make test), `full` at the full one (make verify). */
export function atLevel<T>(quick: T, full: T): T {
  return testLevel === 'full' ? full : quick;
}
