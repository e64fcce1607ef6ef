// Moved to harness/exploration/failureTrace.ts (asFailure: harness/sut/thrown.ts); this re-export stays until its importers move.
export * from '../exploration/failureTrace.ts';
export { asFailure } from '../sut/thrown.ts';
