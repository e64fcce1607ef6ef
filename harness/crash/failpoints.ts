// The crash layer's failpoints (harness/crash/crashStorage.ts): it counts the
// durable calls, logs them, and says when the crash armed after the k-th one is
// due; the fault armed at the (k+1)-th one it throws itself, once.

import type { DurableIoKind } from '../storage/storageCall.ts';
import { type ArmFaultOptions, type FaultCode, faultError } from './injectedFaults.ts';
import { IoLog, type IoLogEntry } from './ioLog.ts';
import type { ArmCrashOptions } from './powerChoices.ts';

export class Failpoints {
  readonly ioLog: IoLog;
  /** Durable calls since construction. */
  ioCount = 0;
  private ioCountSinceTake = 0;
  /** The armed crash happens once ioCount reaches atCount. */
  crashArm: (ArmCrashOptions & { atCount: number }) | null = null;
  private faultArm: { atCount: number; code: FaultCode } | null = null;

  constructor(ioLogMax: number) {
    this.ioLog = new IoLog(ioLogMax);
  }

  /** Durable calls since the last take (or construction); resets that counter. */
  takeIoCount(): number {
    const count = this.ioCountSinceTake;
    this.ioCountSinceTake = 0;
    return count;
  }

  armCrash(options: ArmCrashOptions): void {
    this.crashArm = { ...options, atCount: this.armedCount('armCrash', options.afterIo) };
  }

  armFault(options: ArmFaultOptions): void {
    this.faultArm = { atCount: this.armedCount('armFault', options.afterIo), code: options.code };
  }

  private armedCount(what: string, afterIo: number): number {
    if (!Number.isInteger(afterIo) || afterIo < 0) {
      throw new RangeError(`CrashStorage.${what}: afterIo must be an integer >= 0, got ${afterIo}`);
    }
    return this.ioCount + afterIo;
  }

  disarm(): void {
    this.crashArm = null;
    this.faultArm = null;
  }

  /** Whether the armed crash comes before the next durable call. */
  get crashReached(): boolean {
    return this.crashArm !== null && this.ioCount >= this.crashArm.atCount;
  }

  /** Whether the armed crash has reached its point after a durable call and waits for the next call of any kind. */
  get crashDue(): boolean {
    return this.crashReached && this.crashArm!.afterIo > 0;
  }

  /** Counts and logs a durable call; throws the armed fault (counted and logged) when it is this call. */
  count(kind: DurableIoKind, path: string, extra: { to?: string; position?: number; length?: number }): IoLogEntry {
    const fault = this.faultArm;
    const faulted = fault !== null && this.ioCount === fault.atCount;
    this.ioCount++;
    this.ioCountSinceTake++;
    const entry: IoLogEntry = { seq: this.ioCount, kind, path, ...extra };
    this.ioLog.add(entry);
    if (faulted) {
      this.faultArm = null;
      entry.error = fault.code;
      throw faultError(fault.code, kind, path);
    }
    return entry;
  }
}
