// Moved to harness/exploration/rot.ts, rotTargets.ts and rotVerdict.ts; this re-export stays until its importers move.
export * from '../exploration/rot.ts';
export * from '../exploration/rotTargets.ts';
export * from '../exploration/rotVerdict.ts';
