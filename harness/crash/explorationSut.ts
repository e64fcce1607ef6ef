// Moved to harness/sut/explorationSut.ts (the volume: harness/sut/volumeSut.ts); this re-export stays until its importers move.
export * from '../sut/explorationSut.ts';
export type { BetweenCrash, ChoiceShape } from '../sut/volumeSut.ts';
export { errorWithTrace } from '../sut/thrown.ts';
export type { VolumeClass } from '../types.ts';
