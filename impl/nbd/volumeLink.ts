// The link to a volume's remote secondary as `cowmap serve` and `cowmap status`
// show it (Replica.linkStatus and probeLink, impl/replica.ts), and that status as
// people read it: the ages of the last error and of the far side's point in time.

import { assert } from '../assert.ts';
import type { Replica } from '../replica.ts';
import type { LinkStatus } from '../remote/linkStatus.ts';
import type { ReplicatedVolume } from '../replicatedVolume.ts';

/** What serve and status ask of the volume's replica. */
export type VolumeLink = Pick<Replica, 'linkStatus' | 'probeLink'>;

/** The volume's link through its public linkStatus()/probeLink(): no member for a local secondary. */
export function volumeLink(volume: ReplicatedVolume): VolumeLink {
  if (volume.linkStatus() === null) return {};
  const remote = (status: LinkStatus | null): LinkStatus => {
    assert(status !== null, 'a remote secondary reports its link');
    return status;
  };
  return { linkStatus: () => remote(volume.linkStatus()), probeLink: () => remote(volume.probeLink()) };
}

/** The replica's link status now, null for a local secondary (or a replica that cannot tell). */
export function linkStatusOf(volume: ReplicatedVolume): LinkStatus | null {
  return volume.linkStatus();
}

/** The link's status with the ages that `cowmap status` prints and its --json gives. */
export interface LinkReport {
  readonly url: string;
  readonly state: LinkStatus['state'];
  readonly lastError: string | null;
  /** Seconds since lastError; null when none. */
  readonly lastErrorAgeSeconds: number | null;
  readonly failedAttempts: number;
  /** The last cycle the far side confirmed complete; null before the first connect. */
  readonly farCompletedCycle: number | null;
  /** Seconds since that cycle's swap: the age of the far side's point in time; null when unknown. */
  readonly farAgeSeconds: number | null;
}

export function linkReport(status: LinkStatus, nowMs: number): LinkReport {
  const age = (atMs: number | null): number | null =>
    atMs === null || atMs <= 0 ? null : Math.max(0, (nowMs - atMs) / 1000);
  return {
    url: status.url,
    state: status.state,
    lastError: status.lastError,
    lastErrorAgeSeconds: age(status.lastErrorAtMs),
    failedAttempts: status.failedAttempts,
    farCompletedCycle: status.far?.completedCycle ?? null,
    farAgeSeconds: age(status.far?.swapTimeMs ?? null),
  };
}

/** The report as `cowmap status` lines: the secondary, the link, the far side. */
export function linkLines(report: LinkReport): string[] {
  const error =
    report.lastError === null
      ? 'no error since open'
      : `last error ${report.lastErrorAgeSeconds?.toFixed(1) ?? '?'} s ago: ${report.lastError}`;
  const far =
    report.farCompletedCycle === null
      ? 'not reached yet'
      : `cycle ${report.farCompletedCycle} completed; its point in time is ` +
        (report.farAgeSeconds === null ? 'of unknown age' : `${report.farAgeSeconds.toFixed(1)} s old`);
  return [
    `secondary  ${report.url}`,
    `link       ${report.state}, ${report.failedAttempts} failed attempt(s) since the last success; ${error}`,
    `far side   ${far}`,
  ];
}

/** The report in one line, for serve's log at start: `URL: link up, far side at cycle N (point in time S s old)`. */
export function linkSummary(report: LinkReport): string {
  const far =
    report.farCompletedCycle === null
      ? 'far side not reached'
      : `far side at cycle ${report.farCompletedCycle}` +
        (report.farAgeSeconds === null ? '' : ` (point in time ${report.farAgeSeconds.toFixed(1)} s old)`);
  const error = report.state === 'down' && report.lastError !== null ? `: ${report.lastError}` : '';
  return `${report.url}: link ${report.state}${error}; ${far}`;
}
