// Moved to harness/sut/referenceSut.ts and harness/sut/applyToVolume.ts; this re-export stays until its importers move.
export * from './sut/referenceSut.ts';
export { applyToVolume } from './sut/applyToVolume.ts';
export type { VolumeClass } from './types.ts';
