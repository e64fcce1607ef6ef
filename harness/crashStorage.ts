// Moved to harness/crash/crashStorage.ts; this re-export stays until its importers move.
export { normalizePath, parentDir } from './crash/crashPaths.ts';
export {
  type CrashReport,
  type HandOverReport,
  isSimulatedCrash,
  SimulatedCrash,
} from './crash/crashReport.ts';
export { CrashStorage, type CrashStorageOptions } from './crash/crashStorage.ts';
export type { ArmFaultOptions, FaultCode } from './crash/injectedFaults.ts';
export type { IoLogEntry } from './crash/ioLog.ts';
export type { ArmCrashOptions, PowerChoices } from './crash/powerChoices.ts';
export type { NamespaceKind, UnsyncedWriteInfo } from './crash/unsyncedRecords.ts';
export type { DurableIoKind } from './storage/storageCall.ts';
export type { CrashMode } from './types.ts';
