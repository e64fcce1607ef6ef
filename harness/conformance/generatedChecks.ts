// Moved to pathCheck.ts, fuzzChecks.ts and sweepCheck.ts; this re-export stays until its importers move.
export { pathModelRegions, runPathCheck } from './pathCheck.ts';
export * from './fuzzChecks.ts';
export { runSweepCheck, sweepOrder } from './sweepCheck.ts';
