// Moved to harness/sut/systemUnderTest.ts; this re-export stays until its importers move.
export * from './sut/systemUnderTest.ts';
