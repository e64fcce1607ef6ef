// What `cowmap status DIR2` shows of a receiver's store (docs/receive.md, "Status"):
// the volume it belongs to, the last completed cycle and the age of its point in
// time (now - that cycle's swap time: how far the consistent image lags the
// primary), the running cycle and its journal. One shape whether it comes from the
// store itself (opened read-only) or from DIR2/receive.status while `cowmap receive`
// holds the store (receiveServerStatus.ts).

import type { ReceiveStatus } from './receiveServerStatus.ts';
import type { ReceiverStatus } from './receiverStatus.ts';

export interface ReceiverReport {
  /** The export's size: the image, then the 4096-byte control block. */
  readonly exportSize: number;
  /** The primary volume's id (hex) and geometry; null before its first control block. */
  readonly volumeId: string | null;
  readonly regions: number | null;
  readonly regionSize: number | null;
  /** The last completed cycle (the consistent image is the primary at its swap), or null. */
  readonly completedCycle: number | null;
  /** That swap's time (ISO 8601), null when unknown. */
  readonly completedSwapAt: string | null;
  /** Now - that swap time, in seconds: the age of the consistent image's point in time; null when unknown. */
  readonly ageSeconds: number | null;
  /** The cycle whose journal is open, or null. */
  readonly runningCycle: number | null;
  readonly journalBytes: number;
}

/** The age in seconds of a point in time taken at `swapTimeMs` (0: unknown), never below 0. */
function ageSecondsOf(swapTimeMs: number, nowMs: number): number | null {
  if (swapTimeMs <= 0 || !Number.isFinite(swapTimeMs)) return null;
  return Math.max(0, (nowMs - swapTimeMs) / 1000);
}

/** From the store's own status (a read-only open). */
export function reportOfStore(status: ReceiverStatus, nowMs: number): ReceiverReport {
  const swapTimeMs = status.completedCycle === null ? 0 : status.completedSwapTimeMs;
  return {
    exportSize: status.exportSize,
    volumeId: status.identity === null ? null : Buffer.from(status.identity.volumeId).toString('hex'),
    regions: status.identity?.regions ?? null,
    regionSize: status.identity?.regionSize ?? null,
    completedCycle: status.completedCycle,
    completedSwapAt: swapTimeMs === 0 ? null : new Date(swapTimeMs).toISOString(),
    ageSeconds: ageSecondsOf(swapTimeMs, nowMs),
    runningCycle: status.runningCycle,
    journalBytes: status.journalBytes,
  };
}

/** From the status file a running `cowmap receive` keeps. */
export function reportOfStatusFile(status: ReceiveStatus, nowMs: number): ReceiverReport {
  const swapTimeMs = status.completedSwapAt === null ? 0 : Date.parse(status.completedSwapAt);
  return {
    exportSize: status.exportSize,
    volumeId: status.volumeId,
    regions: status.regions,
    regionSize: status.regionSize,
    completedCycle: status.completedCycle,
    completedSwapAt: status.completedSwapAt,
    ageSeconds: ageSecondsOf(swapTimeMs, nowMs),
    runningCycle: status.runningCycle,
    journalBytes: status.journalBytes,
  };
}

/** The report as `cowmap status` lines (after a first line that says where it came from). */
export function receiverReportLines(report: ReceiverReport): string[] {
  const volume =
    report.volumeId === null
      ? 'no volume yet (no control block received)'
      : `a volume of ${report.regions} regions x ${report.regionSize} bytes, id ${report.volumeId}`;
  let completed = 'none (the consistent image is zeros)';
  if (report.completedCycle !== null)
    completed =
      report.ageSeconds === null
        ? `cycle ${report.completedCycle}; the age of its point in time is unknown (no swap time)`
        : `cycle ${report.completedCycle}; its point in time (the primary at ${report.completedSwapAt}) ` +
          `is ${report.ageSeconds.toFixed(1)} s old`;
  const running =
    report.runningCycle === null ? 'none' : `cycle ${report.runningCycle}, ${report.journalBytes} journal bytes`;
  return [`export     ${report.exportSize} bytes: ${volume}`, `completed  ${completed}`, `running    ${running}`];
}
