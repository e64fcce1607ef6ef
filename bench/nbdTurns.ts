// One server's turn in a repetition of the NBD section (nbd.ts): the server
// started on its own image, the fio jobs in a fixed order, nbdcopy of the random
// image into the export (then the export's file compared with the image), and the
// steady write job on an area written once first. cowmap's steady job runs on a
// second `cowmap serve` of the same volume with no cycles (--cycle-every 0), so that
// every write of it costs data and flush only.

import { join } from 'node:path';
import { fileNames } from '../impl/layout.ts';
import { cycleNumberOf, cycleWindow, type CycleWindow, parseCompletedCycle } from './nbdCycleLines.ts';
import { type FioJob, type FioResult, runFio, runNbdcopy } from './nbdFio.ts';
import { type NbdServer, type ServerExit, startServer } from './nbdServer.ts';
import { secondsSince } from './stats.ts';
import { hashFile, loadAverages } from './system.ts';

export const jobNames = ['randwrite', 'randwriteFsync', 'seqwrite', 'seqwriteFsync', 'randread', 'steady'] as const;
export type JobName = (typeof jobNames)[number];
export const serverNames = ['cowmap', 'nbdkit', 'qemuNbd'] as const;
export type ServerName = (typeof serverNames)[number];

export interface NbdJobsConfig {
  readonly jobSeconds: number;
  /** The steady job's area, from offset 0, written once before the job. */
  readonly steadyAreaBytes: number;
}

const kib4 = 4096;
const mib1 = 1 << 20;

/** The section's fio jobs by name (the steady job's one-pass fill is `steadyFillJob`). */
export function sectionJobs(config: NbdJobsConfig): Record<JobName, FioJob> {
  const timed = { iodepth: 8, runtimeSeconds: config.jobSeconds };
  return {
    randwrite: { name: 'randwrite', rw: 'randwrite', blockBytes: kib4, fsync: false, ...timed },
    randwriteFsync: { name: 'randwrite-fsync', rw: 'randwrite', blockBytes: kib4, fsync: true, ...timed },
    seqwrite: { name: 'seqwrite', rw: 'write', blockBytes: mib1, fsync: false, ...timed },
    seqwriteFsync: { name: 'seqwrite-fsync', rw: 'write', blockBytes: mib1, fsync: true, ...timed },
    randread: { name: 'randread', rw: 'randread', blockBytes: kib4, fsync: false, ...timed },
    steady: {
      name: 'steady',
      rw: 'randwrite',
      blockBytes: kib4,
      fsync: true,
      areaBytes: config.steadyAreaBytes,
      ...timed,
    },
  };
}

function steadyFillJob(config: NbdJobsConfig): FioJob {
  return {
    name: 'steady-fill',
    rw: 'write',
    blockBytes: mib1,
    iodepth: 8,
    fsync: false,
    areaBytes: config.steadyAreaBytes,
  };
}

/** What every turn of one server gave, one entry per repetition. */
export interface ServerRuns {
  readonly fio: Record<JobName, FioResult[]>;
  readonly nbdcopySeconds: number[];
  /** The 1-minute load average at the start of each turn. */
  readonly load: number[];
}

export function emptyServerRuns(): ServerRuns {
  const fio = Object.fromEntries(jobNames.map((name) => [name, [] as FioResult[]])) as Record<JobName, FioResult[]>;
  return { fio, nbdcopySeconds: [], load: [] };
}

/** The cycles cowmap serve completed during its randwrite jobs and its steady job, one window per job. */
export interface CowmapCycles {
  readonly randwrite: CycleWindow[];
  readonly randwriteFsync: CycleWindow[];
  readonly steady: CycleWindow[];
}

/** What a turn needs from the section. */
export interface TurnContext {
  readonly jobs: NbdJobsConfig;
  readonly repoRoot: string;
  /** The clock the servers' lines are stamped with. */
  readonly clock: bigint;
  /** The random image nbdcopy copies, and its SHA-256; null without nbdcopy. */
  readonly source: { readonly path: string; readonly sha256: string } | null;
  /** Problems that make the bench fail: a job with an error, a copy that did not arrive, a server that did not stop. */
  readonly failures: string[];
  readonly log: (line: string) => void;
}

/** How to start one server on a port: the command and its arguments. */
export type ServerCommand = (port: number) => readonly string[];

function completedCycles(server: NbdServer) {
  return server.lines.map((line) => parseCompletedCycle(line.text, line.atSeconds)).filter((cycle) => cycle !== null);
}

/** Runs one job, records it, and returns the cycles the server completed meanwhile. */
async function timedJob(server: NbdServer, runs: ServerRuns, name: JobName, context: TurnContext) {
  const job = sectionJobs(context.jobs)[name];
  const startSeconds = secondsSince(context.clock);
  const result = await runFio(job, server.uri).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\n${server.name}'s stderr: ${server.stderrHead || '(empty)'}`);
  });
  const endSeconds = secondsSince(context.clock);
  if (result.error !== 0 || result.ioBytes === 0)
    context.failures.push(`${server.name} ${name}: fio error ${result.error}, ${result.ioBytes} bytes`);
  runs.fio[name].push(result);
  const rate =
    job.blockBytes === kib4 ? `${Math.round(result.iops)} IOPS` : `${(result.bytesPerSecond / mib1).toFixed(1)} MiB/s`;
  context.log(`    ${server.name} ${name}: ${rate}`);
  return cycleWindow(completedCycles(server), startSeconds, endSeconds);
}

async function stopChecked(server: NbdServer, context: TurnContext): Promise<ServerExit> {
  const exit = await server.stop();
  if (exit.killed || exit.code !== 0)
    context.failures.push(
      `${server.name} did not stop cleanly on SIGTERM: ${JSON.stringify(exit)} ${server.stderrHead}`,
    );
  return exit;
}

/** nbdcopy of the random image into the export, then its file compared with the image. */
async function copyJob(server: NbdServer, runs: ServerRuns, exportFile: string, context: TurnContext) {
  if (context.source === null) return;
  runs.nbdcopySeconds.push(await runNbdcopy(context.source.path, server.uri));
  // The bytes are in the server's file (in the page cache at least) once the copy's flush returned.
  if (hashFile(exportFile) !== context.source.sha256)
    context.failures.push(`${server.name}: after nbdcopy, ${exportFile} differs from the image copied`);
}

/** The jobs every server runs on its first start, in order; the cycles of cowmap's randwrite jobs are kept. */
async function mainJobs(server: NbdServer, runs: ServerRuns, exportFile: string, context: TurnContext) {
  const randwrite = await timedJob(server, runs, 'randwrite', context);
  const randwriteFsync = await timedJob(server, runs, 'randwriteFsync', context);
  for (const name of ['seqwrite', 'seqwriteFsync', 'randread'] as const) await timedJob(server, runs, name, context);
  await copyJob(server, runs, exportFile, context);
  return { randwrite, randwriteFsync };
}

/** The steady job: its area written once (untimed), then the job. */
async function steadyJob(server: NbdServer, runs: ServerRuns, context: TurnContext): Promise<CycleWindow> {
  await runFio(steadyFillJob(context.jobs), server.uri);
  return timedJob(server, runs, 'steady', context);
}

/** nbdkit's or qemu-nbd's turn: one start for every job. */
export async function plainServerTurn(
  name: string,
  command: string,
  args: ServerCommand,
  exportFile: string,
  runs: ServerRuns,
  context: TurnContext,
): Promise<void> {
  runs.load.push(loadAverages()[0]!);
  const server = await startServer(name, command, args, context.repoRoot, context.clock);
  try {
    await mainJobs(server, runs, exportFile, context);
    await steadyJob(server, runs, context);
  } finally {
    await stopChecked(server, context);
  }
}

const cycleQuietTimeoutMs = 120_000;

/** Waits until every cycle the server has spoken of has completed (the resume of one a stop interrupted). */
async function cyclesQuiet(server: NbdServer): Promise<void> {
  const deadline = Date.now() + cycleQuietTimeoutMs;
  for (;;) {
    const spoken = new Set(server.lines.map((line) => cycleNumberOf(line.text)).filter((cycle) => cycle !== null));
    const completed = new Set(completedCycles(server).map((cycle) => cycle.cycle));
    if ([...spoken].every((cycle) => completed.has(cycle))) return;
    if (Date.now() > deadline) throw new Error(`${server.name}: a resumed cycle did not complete in time`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** cowmap's turn: serve with cycles every second for the main jobs, then without cycles for the steady job. */
export async function cowmapTurn(
  volumeDir: string,
  runs: ServerRuns,
  cycles: CowmapCycles,
  context: TurnContext,
): Promise<void> {
  runs.load.push(loadAverages()[0]!);
  const serve = (cycleEverySeconds: number) => (port: number) => [
    join(context.repoRoot, 'bin', 'cowmap.js'),
    'serve',
    volumeDir,
    '--port',
    String(port),
    '--cycle-every',
    String(cycleEverySeconds),
  ];
  const cycling = await startServer('cowmap serve', process.execPath, serve(1), context.repoRoot, context.clock);
  try {
    const windows = await mainJobs(cycling, runs, join(volumeDir, fileNames.primary), context);
    cycles.randwrite.push(windows.randwrite);
    cycles.randwriteFsync.push(windows.randwriteFsync);
  } finally {
    await stopChecked(cycling, context);
  }
  const still = await startServer(
    'cowmap serve (no cycles)',
    process.execPath,
    serve(0),
    context.repoRoot,
    context.clock,
  );
  try {
    await cyclesQuiet(still);
    cycles.steady.push(await steadyJob(still, runs, context));
  } finally {
    await stopChecked(still, context);
  }
}
