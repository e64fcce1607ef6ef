// Moved to harness/storage/memoryStorage.ts; this re-export stays until its importers move.
export { MemoryStorage } from '../storage/memoryStorage.ts';
