// Moved to harness/exploration/recoveryCrashes.ts; this re-export stays until its importers move.
export * from '../exploration/recoveryCrashes.ts';
