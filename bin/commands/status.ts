// cowmap status DIR: the phase, the maps and the counts. The volume is opened
// read-only (OpenOptions.readOnly): recovery runs in memory only and nothing is
// written, so status works on a read-only directory or file system and on a full one.
// --json: the same as one object; `link` only for a remote secondary (held by serve:
// always, null for a local secondary).
// While `cowmap serve` holds the volume (E_LOCKED), status shows what the server
// wrote in DIR/serve.status instead (impl/nbd/serveStatus.ts), with the age of the
// secondary's point in time; a file whose pid is dead is stale (a killed server's)
// and the E_LOCKED error stands.
//
// A remote secondary (an NBD export, docs/remote.md): its URL, the link's state,
// the last error and its age, the failed attempts, and the far side's last
// completed cycle with the age of its point in time (now - its swap time). A
// volume nobody serves asks the far side (Replica.probeLink: a connect bounded by
// the link's connect timeout, a read of the control block, nothing written); a
// served one shows what the server last saw, and the cycle's pause and retries.
//
// A directory that holds no volume may hold a receiver's store (`cowmap receive`'s or
// a volume's `consistent:` secondary): statusReceiver.ts shows it.

import type { CycleRetryStatus } from '../../impl/nbd/cycles.ts';
import { isCowmapError } from '../../impl/errors.ts';
import { lagSeconds, processIsAlive, readServeStatus, type ServeStatus } from '../../impl/nbd/serveStatus.ts';
import { type LinkReport, linkLines, linkReport, volumeLink } from '../../impl/nbd/volumeLink.ts';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import type { LinkOptions } from '../../impl/remote/linkOptions.ts';
import type { LinkStatus } from '../../impl/remote/linkStatus.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/status.ts';
import { showReceiverStatus } from './statusReceiver.ts';
import { writeStdout } from '../stdout.ts';
import { volumeDirArgument } from '../volume.ts';

/** Bits of a map shown in full; larger volumes show this many, then counts. */
const bitsShownMax = 64;

function bitString(regions: number, set: number[]): string {
  const shown = Math.min(regions, bitsShownMax);
  const bits = new Array<string>(shown).fill('0');
  for (const region of set) if (region < shown) bits[region] = '1';
  return bits.join('') + (regions > shown ? `... (first ${shown} of ${regions})` : '');
}

function volumeLines(dir: string, volume: ReplicatedVolume): string[] {
  const current = volume.currentRegions();
  const next = volume.nextRegions();
  const preserved = volume.preservedRegions();
  return [
    `volume     ${dir}`,
    `geometry   ${volume.regions} regions x ${volume.regionSize} bytes (${volume.sizeBytes} bytes)`,
    `phase      ${volume.phase}${volume.phase === 'replicating' ? ` (cycle ${volume.cycle}, resumed: every current region must be sent again)` : ''}`,
    `cycles     ${volume.cycle} started`,
    `current    ${bitString(volume.regions, current)}  ${current.length} dirty (C)`,
    `next       ${bitString(volume.regions, next)}  ${next.length} dirty (X)`,
    `cow        ${bitString(volume.regions, preserved)}  ${preserved.length} preserved (W)`,
  ];
}

function volumeJson(dir: string, volume: ReplicatedVolume): object {
  return {
    volume: dir,
    regions: volume.regions,
    regionSize: volume.regionSize,
    sizeBytes: volume.sizeBytes,
    phase: volume.phase,
    cycle: volume.cycle,
    currentRegions: volume.currentRegions(),
    nextRegions: volume.nextRegions(),
    preservedRegions: volume.preservedRegions(),
  };
}

/** The lag as a sentence: the secondary's point in time is this old. */
export function lagText(lag: number | null): string {
  return lag === null
    ? 'unknown: no cycle completed since the server started'
    : `secondary's point in time: ${lag.toFixed(1)} s old`;
}

function serverLines(dir: string, status: ServeStatus, lag: number | null): string[] {
  const cycle = status.cycleRunning ? `cycle ${status.cycle} running` : `cycle ${status.cycle}, none running`;
  return [
    `volume     ${dir}: held by cowmap serve (pid ${status.pid}); from its status file, updated ${status.updatedAt}`,
    `listening  ${status.listening}, ${status.connections} connection(s), ${status.bufferedBytes} bytes buffered`,
    `phase      ${status.phase} (${cycle})`,
    `regions    ${status.nextRegions} next, ${status.regionsLeft} left to send in this cycle`,
    `cycles     ${status.cyclesCompleted} completed since the server started` +
      (status.lastCompletedCycle === null
        ? ''
        : ` (last: cycle ${status.lastCompletedCycle}, ${status.lastCycleSeconds ?? '?'} s)`),
    `lag        ${lagText(lag)}`,
    `failure    ${status.failure ?? 'none'}`,
  ];
}

/** The cycle's pause and retries after link faults, when there were any. */
function retryLines(retry: CycleRetryStatus, nowMs: number): string[] {
  if (retry.faultsTotal === 0) return [];
  const next =
    retry.nextRetryAtMs === null
      ? ''
      : `, next attempt in ${Math.max(0, (retry.nextRetryAtMs - nowMs) / 1000).toFixed(1)} s`;
  const state = retry.paused
    ? `cycle paused after ${retry.failedAttempts} failed attempt(s)${next}`
    : 'no cycle paused';
  return [
    `retries    ${state}; ${retry.faultsTotal} link fault(s), ${retry.resends} resend(s) ` +
      `(${retry.regionsResent} region(s)) since the server started`,
  ];
}

/**
 * The far side's link for a volume nobody serves: probeLink (a connect and a read,
 * nothing written). A probe that throws is reported as a down link, not as a failure
 * of status: the volume itself is fine.
 */
function probedLink(volume: ReplicatedVolume, nowMs: number): LinkReport | null {
  const link = volumeLink(volume);
  if (link.probeLink === undefined) return null;
  let status: LinkStatus;
  try {
    status = link.probeLink();
  } catch (error) {
    const base = link.linkStatus?.();
    const message = isCowmapError(error) ? `${error.code}: ${error.message}` : String(error);
    status = {
      url: base?.url ?? '?',
      state: 'down',
      lastError: message,
      lastErrorAtMs: nowMs,
      failedAttempts: (base?.failedAttempts ?? 0) + 1,
      far: base?.far ?? null,
    };
  }
  return linkReport(status, nowMs);
}

/** The probe of a far side that hangs ends after these: status answers within seconds (the defaults suit cycles). */
const statusLink: Partial<LinkOptions> = { retryBudgetMs: 0, connectTimeoutMs: 2_000, requestTimeoutMs: 5_000 };

/** The server's status when a live server holds the volume, else null (the E_LOCKED error stands). */
function liveServeStatus(dir: string): ServeStatus | null {
  const status = readServeStatus(dir);
  return status !== null && processIsAlive(status.pid) ? status : null;
}

export const command = defineCommand(description, async ({ values, positionals }) => {
  const dir = volumeDirArgument(positionals);
  const json = values.json === true;
  try {
    const volume = ReplicatedVolume.open(new NodeStorage(), dir, { readOnly: true, link: statusLink });
    try {
      const link = probedLink(volume, Date.now());
      const text = json
        ? JSON.stringify({ ...volumeJson(dir, volume), ...(link === null ? {} : { link }) })
        : [...volumeLines(dir, volume), ...(link === null ? [] : linkLines(link))].join('\n');
      await writeStdout(`${text}\n`);
      return 0;
    } finally {
      volume.close();
    }
  } catch (error) {
    if (isCowmapError(error, 'E_NOT_FOUND')) {
      await showReceiverStatus(dir, json);
      return 0;
    }
    const status = isCowmapError(error, 'E_LOCKED') ? liveServeStatus(dir) : null;
    if (status === null) throw error;
    const now = new Date();
    const lag = lagSeconds(status, now);
    const link = status.link === null ? null : linkReport(status.link, now.getTime());
    const text = json
      ? JSON.stringify({ volume: dir, heldBy: 'cowmap serve', server: status, lagSeconds: lag, link })
      : [
          ...serverLines(dir, status, lag),
          ...(link === null ? [] : linkLines(link)),
          ...retryLines(status.retry, now.getTime()),
        ].join('\n');
    await writeStdout(`${text}\n`);
    return 0;
  }
});
