// The storage double family in one import: memory (a device in memory), recording
// (a log of every call), counting (I/O counts for the benchmarks), fail-at-k (a
// durable call that throws once), and the crash layer (harness/crash/), which
// wraps any of them, or impl/nodeStorage.ts, to crash after the k-th durable call
// and lose, keep or tear what was not synced. The wrappers compose: a
// RecordingStorage outside a FailingStorage logs the failed call too.

export { CrashStorage, type CrashStorageOptions } from '../crash/crashStorage.ts';
export { type CrashReport, isSimulatedCrash, SimulatedCrash } from '../crash/crashReport.ts';
export type { ArmCrashOptions, PowerChoices } from '../crash/powerChoices.ts';
export { CountingStorage, type IoCounts } from './countingStorage.ts';
export { FailingStorage, type FailWhen, type Failure } from './failingStorage.ts';
export { MemoryStorage } from './memoryStorage.ts';
export { RecordingStorage } from './recordingStorage.ts';
export type { DurableIoKind, StorageCall, StorageCallKind } from './storageCall.ts';
