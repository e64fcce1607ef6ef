// Moved to harness/exploration/ (the entry: explorer.ts); this re-export stays until its importers move.
export { asFailure } from './sut/thrown.ts';
export type { ChoiceShape } from './sut/volumeSut.ts';
export type { VolumeClass } from './types.ts';
export { modelOpOf } from './sut/systemUnderTest.ts';
export { MemoryStorage } from './storage/memoryStorage.ts';
export { explorationModes, seedFor } from './exploration/choices.ts';
export type { ExplorationMode } from './exploration/choices.ts';
export { Explorer, exploreCrashes } from './exploration/explorer.ts';
export type { ExplorationResult } from './exploration/explorer.ts';
export type { ExplorationFailure } from './exploration/failureTrace.ts';
export type { FoundFailure, PowerLossAfterRecovery } from './exploration/found.ts';
export { describeOp, explorationLabel, explorationOps, shortenLabels } from './exploration/operations.ts';
export { explorationDefaults } from './exploration/options.ts';
export type { ExplorationOptions } from './exploration/options.ts';
export type { PrefixNode } from './exploration/prefixes.ts';
export { formatFailureReport, formatSummary, statesPerKind, statesPerSecond } from './exploration/report.ts';
export type { ExplorationStats, InsideKind, InsideStats, ModeStats, RotStats } from './exploration/stats.ts';
