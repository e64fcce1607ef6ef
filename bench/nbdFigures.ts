// The NBD section's figures (nbd.ts): ours over nbdkit's per repetition, with
// qemu-nbd's figures beside ("–" without qemu-nbd), the cycles of the randwrite
// jobs, nbdcopy's times, the in-process first write over its floor, and the load
// average of the turns beside each.

import type { CowmapCycles, JobName, ServerName, ServerRuns } from './nbdTurns.ts';
import { type CycleWindow, describeCycleWindows } from './nbdCycleLines.ts';
import type { FioResult } from './nbdFio.ts';
import type { FirstWriteOutcome } from './nbdFirstWrite.ts';
import type { Figure, Target } from './report.ts';
import { ratios, summarize } from './stats.ts';
import { describeLoad } from './system.ts';

export type RunsByServer = Partial<Record<ServerName, ServerRuns>> &
  Pick<Record<ServerName, ServerRuns>, 'cowmap' | 'nbdkit'>;

const dash = '–';
const mebibyte = 1 << 20;

interface RatioSpec {
  readonly key: string;
  readonly job: JobName;
  readonly label: string;
  /** IOPS for 4 KiB jobs, MiB/s for 1 MiB ones. */
  readonly measure: 'iops' | 'mibPerSecond';
  readonly target?: { readonly text: string; readonly atLeast: number };
  /** The cycles of the job's windows, for the detail. */
  readonly cycles?: readonly CycleWindow[];
  readonly why?: string;
}

const rateOf = (measure: RatioSpec['measure']) => (result: FioResult) =>
  measure === 'iops' ? result.iops : result.bytesPerSecond / mebibyte;

function formatRate(value: number, measure: RatioSpec['measure']): string {
  return measure === 'iops' ? `${Math.round(value).toLocaleString('en-US')} IOPS` : `${value.toFixed(1)} MiB/s`;
}

const displayNames: Record<ServerName, string> = { cowmap: 'cowmap', nbdkit: 'nbdkit', qemuNbd: 'qemu-nbd' };

/** The 1-minute load average at the start of each server's turns: "load average cowmap 1.20 (0.90..1.60), ...". */
function loadText(runs: RunsByServer): string {
  const parts = (['cowmap', 'nbdkit', 'qemuNbd'] as const)
    .filter((name) => runs[name] !== undefined)
    .map((name) => `${displayNames[name]} ${describeLoad(runs[name]!.load).replace('load average ', '')}`);
  return `load average at the turns' starts: ${parts.join(', ')}`;
}

/** qemu-nbd's median and its ratio to nbdkit, or "–" without it. */
function qemuText(runs: RunsByServer, job: JobName, measure: RatioSpec['measure']): string {
  const qemu = runs.qemuNbd;
  if (qemu === undefined) return `qemu-nbd ${dash}`;
  const values = qemu.fio[job].map(rateOf(measure));
  const against = ratios(values, runs.nbdkit.fio[job].map(rateOf(measure)));
  return `qemu-nbd ${formatRate(summarize(values).median, measure)} (${summarize(against).median.toFixed(2)}x nbdkit)`;
}

/** The cycles of a job's windows; the steady job runs with none, so only their count is said (0 is expected). */
function cyclesText(spec: RatioSpec): string {
  const windows = spec.cycles ?? [];
  if (spec.job !== 'steady') return `cycles: ${describeCycleWindows(windows)}`;
  const completed = windows.reduce((total, window) => total + window.completed, 0);
  return `cycles during the steady jobs: ${completed} (--cycle-every 0)`;
}

function ratioFigure(spec: RatioSpec, runs: RunsByServer): Figure {
  const ours = runs.cowmap.fio[spec.job].map(rateOf(spec.measure));
  const theirs = runs.nbdkit.fio[spec.job].map(rateOf(spec.measure));
  const summary = summarize(ratios(ours, theirs));
  const target: Target | undefined =
    spec.target === undefined ? undefined : { text: spec.target.text, met: summary.median >= spec.target.atLeast };
  const rates = `${formatRate(summarize(ours).median, spec.measure)} vs ${formatRate(summarize(theirs).median, spec.measure)}`;
  const cycles = spec.cycles === undefined ? '' : `; ${cyclesText(spec)}`;
  return {
    key: spec.key,
    label: spec.label,
    unit: 'ratio',
    summary,
    against: 'nbdkit file, the same fio job on the same kind of image',
    ...(target === undefined ? {} : { target }),
    detail: `${rates}; ${qemuText(runs, spec.job, spec.measure)}${cycles}; ${loadText(runs)}`,
    ...(spec.why === undefined ? {} : { why: spec.why }),
  };
}

/** What the steady job's own counts say: with no cycle during it, its writes did nbdkit's I/O (data, flush). */
function steadyWhy(windows: readonly CycleWindow[]): string {
  const completed = windows.reduce((total, window) => total + window.completed, 0);
  if (completed > 0)
    return `${completed} cycle(s) completed during the steady jobs, so some writes took the copy-on-write path`;
  return (
    'no cycle ran during the steady jobs and their area was written first, so each write made the I/O of ' +
    "nbdkit's (pwrite, and fdatasync at the flush): the gap is in the server's request path"
  );
}

/** The fio ratios, in the order of the table. */
export function fioFigures(runs: RunsByServer, cycles: CowmapCycles): Figure[] {
  const specs: RatioSpec[] = [
    {
      key: 'nbdWriteSteadyVsNbdkit',
      job: 'steady',
      label:
        'randwrite 4k iodepth 8 --fsync=1 on an area written once, no cycle running (data + flush only), ours / nbdkit',
      measure: 'iops',
      target: { text: '>= 0.8', atLeast: 0.8 },
      cycles: cycles.steady,
      why: steadyWhy(cycles.steady),
    },
    {
      key: 'nbdRandwriteVsNbdkit',
      job: 'randwrite',
      label: 'randwrite 4k iodepth 8 over the volume, a cycle every second, ours / nbdkit',
      measure: 'iops',
      target: { text: '>= 0.25', atLeast: 0.25 },
      cycles: cycles.randwrite,
    },
    {
      key: 'nbdRandwriteFsyncVsNbdkit',
      job: 'randwriteFsync',
      label: 'randwrite 4k iodepth 8 --fsync=1 over the volume, a cycle every second, ours / nbdkit',
      measure: 'iops',
      target: { text: '>= 0.5', atLeast: 0.5 },
      cycles: cycles.randwriteFsync,
    },
    {
      key: 'nbdReadVsNbdkit',
      job: 'randread',
      label: 'randread 4k iodepth 8, ours / nbdkit',
      measure: 'iops',
      target: { text: '>= 0.8', atLeast: 0.8 },
      why:
        'a read makes no copy and touches no map: ours and nbdkit both pread the image, so the gap is in the ' +
        "server's request path",
    },
    {
      key: 'nbdSeqWriteVsNbdkit',
      job: 'seqwrite',
      label: 'write 1M iodepth 8, ours / nbdkit',
      measure: 'mibPerSecond',
    },
    {
      key: 'nbdSeqWriteFsyncVsNbdkit',
      job: 'seqwriteFsync',
      label: 'write 1M iodepth 8 --fsync=1, ours / nbdkit',
      measure: 'mibPerSecond',
    },
  ];
  return specs.map((spec) => ratioFigure(spec, runs));
}

/** nbdcopy's wall time, ours over nbdkit's (above 1: ours is slower); none without nbdcopy. */
export function nbdcopyFigure(runs: RunsByServer, imageBytes: number): Figure[] {
  const ours = runs.cowmap.nbdcopySeconds;
  const theirs = runs.nbdkit.nbdcopySeconds;
  if (ours.length === 0) return [];
  const qemu = runs.qemuNbd?.nbdcopySeconds;
  const qemuText =
    qemu === undefined || qemu.length === 0 ? `qemu-nbd ${dash}` : `qemu-nbd ${summarize(qemu).median.toFixed(3)} s`;
  return [
    {
      key: 'nbdcopySecondsVsNbdkit',
      label: `nbdcopy --flush of a ${imageBytes / mebibyte} MiB image of random bytes into the export, wall time, ours / nbdkit`,
      unit: 'ratio',
      summary: summarize(ratios(ours, theirs)),
      against: 'nbdkit file',
      detail:
        `${summarize(ours).median.toFixed(3)} s vs ${summarize(theirs).median.toFixed(3)} s; ${qemuText}; ` +
        loadText(runs),
    },
  ];
}

/** The cycles of all randwrite jobs: their lengths and the replica's lag, as figures without targets. */
export function cycleFigures(cycles: CowmapCycles): Figure[] {
  const windows = [...cycles.randwrite, ...cycles.randwriteFsync];
  const lengths = windows.flatMap((window) => window.lengthsSeconds);
  const completedPerJob = windows.map((window) => window.completed);
  const figures: Figure[] = [
    {
      key: 'nbdCycleLagSeconds',
      label:
        'during the randwrite jobs (a cycle every second): the most the secondary trailed the primary, per job ' +
        "(since the latest completed cycle's swap)",
      unit: 's',
      summary: summarize(windows.map((window) => window.lagSeconds)),
      detail: `cycles completed per job: median ${summarize(completedPerJob).median}, min ${Math.min(...completedPerJob)}`,
    },
  ];
  if (lengths.length > 0) {
    figures.push({
      key: 'nbdCycleSeconds',
      label: 'length of each cycle completed during the randwrite jobs (as cowmap serve prints it)',
      unit: 's',
      summary: summarize(lengths),
      detail: describeCycleWindows(windows),
    });
  }
  return figures;
}

/** nbdFirstWriteOverFloor, from the in-process chunks. */
export function firstWriteFigure(
  outcome: FirstWriteOutcome,
  config: { readonly chunkRegions: number; readonly firstWrites: number },
  load: readonly number[],
): Figure {
  const { series, oursIo } = outcome;
  const { chunkRegions, firstWrites } = config;
  const each = (count: number) => Number((count / firstWrites).toFixed(2));
  const io =
    `${each(oursIo.readCalls)} read(s), ${each(oursIo.writeCalls)} write(s), ` +
    `${each(oursIo.syncCalls)} fdatasync(s)`;
  const summary = summarize(ratios(series.oursSeconds, series.floorSeconds));
  const us = (seconds: number[]) => summarize(seconds.map((value) => (value / chunkRegions) * 1e6)).median.toFixed(0);
  return {
    key: 'nbdFirstWriteOverFloor',
    label:
      'first 4 KiB write to a 64 KiB region in a running cycle, writeMany + flush, over its floor in node:fs ' +
      '(pread region, pwrite copy, fdatasync copy, pwrite 4 KiB, fdatasync primary)',
    unit: 'ratio',
    summary,
    against: 'the floor: the same I/O with node:fs on plain files of the same size',
    target: { text: '<= 1.3', met: summary.median <= 1.3 },
    detail:
      `${us(series.oursSeconds)} vs ${us(series.floorSeconds)} us/write; ours per write ${io} ` +
      `(the floor: 1, 2, 2); ${describeLoad(load)}`,
    why:
      'beyond the floor, ours hashes the old region (SHA-256) and writes its 64-byte COW entry, in the same ' +
      "fdatasync of the COW file as the slot: a second extent of that file to sync, and the volume's checks",
  };
}
