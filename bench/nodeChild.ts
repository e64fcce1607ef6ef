// A benchmark child process, run and timed: `node --import tsx SCRIPT ARGS` under
// /usr/bin/time -v when it exists, for the child's peak resident memory.

import { spawnSync } from 'node:child_process';
import { secondsSince } from './stats.ts';

export interface ChildRun {
  status: number | null;
  /** The child's stdout, parsed as the JSON object it prints last. */
  report: Record<string, unknown> | null;
  /** Peak resident memory of the child by /usr/bin/time -v, when present. */
  peakRssBytesByTime: number | null;
  stderrTail: string;
  seconds: number;
}

const timeCommand = '/usr/bin/time';

/** The JSON object a child prints as its last line of stdout, or null. */
function lastJsonLine(stdout: string): Record<string, unknown> | null {
  const lastLine = stdout.trim().split('\n').at(-1);
  if (!lastLine?.startsWith('{')) return null;
  try {
    return JSON.parse(lastLine) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Runs `node --import tsx SCRIPT ARGS` (under /usr/bin/time -v when it exists) and reads its peak RSS. */
export function runNodeChild(script: string, args: readonly string[], cwd: string, timeoutMs: number): ChildRun {
  const haveTime = spawnSync(timeCommand, ['-V'], { encoding: 'utf8' }).error === undefined;
  const nodeArgs = ['--import', 'tsx', script, ...args];
  const options = { cwd, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 } as const;
  const started = process.hrtime.bigint();
  const result = haveTime
    ? spawnSync(timeCommand, ['-v', process.execPath, ...nodeArgs], options)
    : spawnSync(process.execPath, nodeArgs, options);
  const seconds = secondsSince(started);
  const stderr = result.stderr ?? '';
  const match = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  return {
    status: result.status,
    report: lastJsonLine(result.stdout ?? ''),
    peakRssBytesByTime: match === null ? null : Number(match[1]) * 1024,
    stderrTail: stderr.trim().split('\n').slice(-30).join('\n'),
    seconds,
  };
}

/** The peak RSS of a child: by /usr/bin/time when it ran under it, else the child's own maxRSS. */
export function peakRssBytesOf(run: ChildRun): number | null {
  if (run.peakRssBytesByTime !== null) return run.peakRssBytesByTime;
  const own = run.report?.maxRssBytes;
  return typeof own === 'number' ? own : null;
}

/** A child that went wrong, in one line: its exit, its report and the end of its stderr. */
export function describeChildFailure(run: ChildRun): string {
  return `exit ${run.status}, report ${JSON.stringify(run.report)}: ${run.stderrTail.split('\n').slice(-3).join(' ')}`;
}
