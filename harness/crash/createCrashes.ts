// Moved to harness/exploration/createCrashes.ts; this re-export stays until its importers move.
export * from '../exploration/createCrashes.ts';
