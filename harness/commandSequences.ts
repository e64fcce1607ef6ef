// Moved to harness/fuzz/run.ts and harness/fuzz/options.ts; this re-export stays until its importers move.
export { runFuzz } from './fuzz/run.ts';
export { fuzzDefaults } from './fuzz/options.ts';
export type { FuzzData, FuzzFailure, FuzzOptions, FuzzProgress, FuzzResult, HistoryMin } from './fuzz/options.ts';
