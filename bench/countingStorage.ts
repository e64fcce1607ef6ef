// Moved to harness/storage/countingStorage.ts; this re-export stays until its importers move.
export { CountingStorage, type IoCounts } from '../harness/storage/countingStorage.ts';
