// The two contenders of the remote section, one repetition each: our cycle of a
// volume whose secondary is an NBD export, and nbdcopy of the same bytes into an
// export of the same server. What each time covers:
//
//   ours     ReplicatedVolume.open (a writable NbdReplica starts its link's worker
//            thread there, which loads in the background; nothing connects), runCycle
//            (the swap; at the first batch the link connects: what is left of the
//            worker's load, the socket's connect, the handshake, the control block
//            read and checked; every dirty region sent in batches, each batch's
//            FLUSH, the complete control block and its FLUSH, the durable
//            completion), and close (the disconnect). Open, the cycle and each link
//            call (remoteLinkTimes.ts) are also timed apart.
//   nbdcopy  the `nbdcopy --flush FILE URL` process from spawn to exit: its start,
//            connects and handshakes, the copy, the FLUSH, the disconnects.
//
// Both read their bytes from the page cache (the dirty regions were just written to
// the primary, the file of the dirty bytes just made), and both write into files
// of the same nbdkit.

import { spawn } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Geometry } from '../impl/geometry.ts';
import { NodeStorage } from '../impl/nodeStorage.ts';
import { exportSizeOf } from '../impl/remote/controlBlock.ts';
import type { LinkOptions } from '../impl/remote/linkOptions.ts';
import type { RemoteLinkFactory } from '../impl/remote/remoteLink.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { runCycle } from '../impl/runCycle.ts';
import type { OpenOptions } from '../impl/volumeParts.ts';
import { dirtyContent, pickRegions } from './dirty.ts';
import { emptyLinkCallTimes, type LinkCallTimes, timedLinkFactory } from './remoteLinkTimes.ts';
import { secondsSince } from './stats.ts';
import { hashFile } from './system.ts';

/** The export file names in the server's directory. */
export const exportNames = { secondary: 'secondary.img', copy: 'copy.img' } as const;

export interface OursTimes {
  /** The replica's link calls, timed (remoteLinkTimes.ts): where the cycle's time went. */
  readonly link: LinkCallTimes;
  readonly openSeconds: number;
  readonly cycleSeconds: number;
  readonly closeSeconds: number;
  readonly totalSeconds: number;
  readonly batches: number;
  readonly regionsSent: number;
}

/** A file of `sizeBytes` zero bytes (sparse), made or cut to that size. */
export function sizedFile(path: string, sizeBytes: number): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, sizeBytes);
  } finally {
    closeSync(fd);
  }
}

function openOptions(link: LinkOptions, linkFactory?: RemoteLinkFactory): OpenOptions {
  return linkFactory === undefined ? { link } : { link, linkFactory };
}

/** The volume in `dir` with its secondary the export `url` (its file made first, the size the volume needs). */
export function createRemoteVolume(
  dir: string,
  url: string,
  exportFile: string,
  geometry: Geometry,
  link: LinkOptions,
) {
  sizedFile(exportFile, exportSizeOf(geometry));
  ReplicatedVolume.create(new NodeStorage(), dir, geometry, { secondaryUrl: url, link }).close();
}

/** A repetition's dirty regions and their content, seeded. */
export interface DirtySet {
  readonly regions: readonly number[];
  readonly content: readonly Uint8Array[];
}

export function drawDirty(geometry: Geometry, dirtyFraction: number, seed: number): DirtySet {
  const count = Math.max(1, Math.round(geometry.regions * dirtyFraction));
  const regions = pickRegions(geometry.regions, count, seed);
  return { regions, content: dirtyContent(regions, geometry.regionSize, seed + 1) };
}

/** The dirty regions written to `volume`, durable (untimed everywhere). */
function writeSet(volume: ReplicatedVolume, dirty: DirtySet): void {
  volume.writeMany(
    dirty.regions.map((region, index) => ({ offset: region * volume.regionSize, bytes: dirty.content[index]! })),
  );
  volume.flush();
}

/** Untimed: the dirty regions written to the primary (their next bits set), durable. */
export function writeDirty(dir: string, dirty: DirtySet, link: LinkOptions): void {
  const volume = ReplicatedVolume.open(new NodeStorage(), dir, openOptions(link));
  try {
    writeSet(volume, dirty);
  } finally {
    volume.close();
  }
}

/** Timed: open, one cycle, close; the replica's link calls timed too. */
export function oursCycle(dir: string, link: LinkOptions): OursTimes {
  const times = emptyLinkCallTimes();
  const started = process.hrtime.bigint();
  const volume = ReplicatedVolume.open(new NodeStorage(), dir, openOptions(link, timedLinkFactory(times)));
  const openSeconds = secondsSince(started);
  const cycleStarted = process.hrtime.bigint();
  let run: ReturnType<typeof runCycle>;
  try {
    run = runCycle(volume);
  } catch (error) {
    volume.close();
    throw error;
  }
  const cycleSeconds = secondsSince(cycleStarted);
  const closeStarted = process.hrtime.bigint();
  volume.close();
  const closeSeconds = secondsSince(closeStarted);
  return {
    link: times,
    openSeconds,
    cycleSeconds,
    closeSeconds,
    totalSeconds: secondsSince(started),
    batches: run.batches,
    regionsSent: run.regions.length,
  };
}

/**
 * A cycle with the link already up, as `cowmap serve` runs them: in one open, the
 * `warmup` regions written and sent by an untimed cycle (the link connects there),
 * then the `dirty` ones written (untimed) and the timed cycle that sends them.
 */
export function oursWarmCycle(dir: string, link: LinkOptions, warmup: DirtySet, dirty: DirtySet): OursTimes {
  const times = emptyLinkCallTimes();
  const volume = ReplicatedVolume.open(new NodeStorage(), dir, openOptions(link, timedLinkFactory(times)));
  try {
    writeSet(volume, warmup);
    runCycle(volume);
    writeSet(volume, dirty);
    // Only the timed cycle's link calls count.
    Object.assign(times, emptyLinkCallTimes());
    const started = process.hrtime.bigint();
    const run = runCycle(volume);
    const cycleSeconds = secondsSince(started);
    return {
      // A copy: the close in finally (its disconnect) must not add to the timed cycle's calls.
      link: structuredClone(times),
      openSeconds: 0,
      cycleSeconds,
      closeSeconds: 0,
      totalSeconds: cycleSeconds,
      batches: run.batches,
      regionsSent: run.regions.length,
    };
  } finally {
    volume.close();
  }
}

/** Which of the dirty regions the export file does not hold as written (a check of ours). */
export function regionsNotArrived(exportFile: string, dirty: DirtySet, regionSize: number): number[] {
  const fd = openSync(exportFile, 'r');
  const buffer = Buffer.alloc(regionSize);
  try {
    return dirty.regions.filter((region, index) => {
      readSync(fd, buffer, 0, regionSize, region * regionSize);
      return !buffer.equals(dirty.content[index]!);
    });
  } finally {
    closeSync(fd);
  }
}

/** The dirty bytes in one file, in region order: nbdcopy's source. */
export function writeDirtyFile(path: string, dirty: DirtySet): string {
  writeFileSync(path, Buffer.concat(dirty.content.map((bytes) => Buffer.from(bytes))));
  return hashFile(path);
}

/** `nbdcopy --flush SOURCE URL`: wall time from spawn to exit, in seconds. */
export function runNbdcopy(source: string, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('nbdcopy', ['--flush', source, url], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (status) => {
      const seconds = secondsSince(started);
      if (status === 0) resolve(seconds);
      else reject(new Error(`nbdcopy into ${url}: exit ${status}: ${stderr.trim()}`));
    });
  });
}

/** The copy's export file, for the check after nbdcopy. */
export function copyExportPath(exportDir: string): string {
  return join(exportDir, exportNames.copy);
}
