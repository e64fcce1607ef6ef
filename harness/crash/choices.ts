// Moved to harness/exploration/choices.ts; this re-export stays until its importers move.
export * from '../exploration/choices.ts';
