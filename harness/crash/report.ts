// Moved to harness/exploration/report.ts; this re-export stays until its importers move.
export * from '../exploration/report.ts';
