// The NBD bench's clients: fio jobs through its nbd engine (libnbd), with JSON
// output, and nbdcopy of an image into an export, each run as a child process
// without blocking the event loop (the servers' stdout lines are stamped as they
// arrive meanwhile).

import { spawn } from 'node:child_process';
import { secondsSince } from './stats.ts';

/** One fio job of the section: its name in the figures and its fio options. */
export interface FioJob {
  readonly name: string;
  readonly rw: 'randwrite' | 'write' | 'randread';
  readonly blockBytes: number;
  readonly iodepth: number;
  readonly fsync: boolean;
  /** Bytes of the export the job covers from offset 0 (undefined: the whole export). */
  readonly areaBytes?: number;
  /** Time based for this many seconds; undefined: one pass over the area. */
  readonly runtimeSeconds?: number;
}

export interface FioResult {
  readonly iops: number;
  readonly bytesPerSecond: number;
  readonly ioBytes: number;
  /** fio's own error code of the job (0: none). */
  readonly error: number;
}

interface ChildOutput {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

function runChild(command: string, args: readonly string[], timeoutMs: number): Promise<ChildOutput> {
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('error', (error) => resolve({ status: null, stdout, stderr: error.message, seconds: 0 }));
    child.once('close', (status) => resolve({ status, stdout, stderr, seconds: secondsSince(started) }));
  });
}

export function fioArgs(job: FioJob, uri: string): string[] {
  const args = [
    `--name=${job.name}`,
    '--ioengine=nbd',
    `--uri=${uri}`,
    `--rw=${job.rw}`,
    `--bs=${job.blockBytes}`,
    `--iodepth=${job.iodepth}`,
    '--output-format=json',
  ];
  if (job.fsync) args.push('--fsync=1');
  if (job.areaBytes !== undefined) args.push(`--size=${job.areaBytes}`);
  // In milliseconds: fio reads a bare number as whole seconds.
  if (job.runtimeSeconds !== undefined)
    args.push('--time_based', `--runtime=${Math.round(job.runtimeSeconds * 1000)}ms`);
  return args;
}

/** The job's figures from fio's JSON output (which the nbd engine prefixes with a line of its own). */
export function parseFioOutput(stdout: string, rw: FioJob['rw']): FioResult {
  const start = stdout.indexOf('{');
  if (start < 0) throw new Error(`fio printed no JSON: ${stdout.slice(0, 200)}`);
  const report = JSON.parse(stdout.slice(start)) as {
    jobs: { error: number; read: Record<string, number>; write: Record<string, number> }[];
  };
  const job = report.jobs[0];
  if (job === undefined) throw new Error('fio reported no job');
  const side = rw === 'randread' ? job.read : job.write;
  return { iops: side.iops!, bytesPerSecond: side.bw_bytes!, ioBytes: side.io_bytes!, error: job.error };
}

/** Runs one fio job against `uri`; throws (with fio's stderr) when fio fails. */
export async function runFio(job: FioJob, uri: string): Promise<FioResult> {
  const timeoutMs = ((job.runtimeSeconds ?? 60) + 60) * 1000;
  const run = await runChild('fio', fioArgs(job, uri), timeoutMs);
  if (run.status !== 0) throw new Error(`fio ${job.name} against ${uri}: exit ${run.status}: ${run.stderr.trim()}`);
  return parseFioOutput(run.stdout, job.rw);
}

/** `nbdcopy --flush SOURCE URI`: the copy's wall time in seconds (durable at the end: --flush). */
export async function runNbdcopy(sourcePath: string, uri: string): Promise<number> {
  const run = await runChild('nbdcopy', ['--flush', sourcePath, uri], 300_000);
  if (run.status !== 0) throw new Error(`nbdcopy into ${uri}: exit ${run.status}: ${run.stderr.trim()}`);
  return run.seconds;
}
