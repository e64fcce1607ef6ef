// For the command-line tests: runs main() of bin/main.ts in this process with what
// it writes to stdout and stderr captured (text only: the test runner's own
// reports, which node:test writes as bytes, pass through), its returned status
// standing for the exit status. For the cases that are not about the process
// boundary, which cost a process start (seconds on a loaded machine) each.
// Test-only: nothing outside *.test.ts imports this file.

import { main } from './main.ts';

export interface InProcessRun {
  readonly args: string[];
  readonly status: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Replaces `stream.write` with one that keeps text in `into`, and returns the original. */
function captureStream(stream: NodeJS.WriteStream, into: string[]): typeof process.stdout.write {
  const original = stream.write;
  stream.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
    if (typeof chunk !== 'string') return original.call(stream, chunk as Uint8Array, ...(rest as [])) as boolean;
    into.push(chunk);
    const callback = rest.find((value) => typeof value === 'function') as ((error?: Error | null) => void) | undefined;
    if (callback !== undefined) process.nextTick(callback);
    return true;
  } as typeof process.stdout.write;
  return original;
}

/** main(args) with COWMAP_DEBUG unset, its output captured. */
export async function runInProcess(args: string[]): Promise<InProcessRun> {
  const out: string[] = [];
  const err: string[] = [];
  const savedDebug = process.env.COWMAP_DEBUG;
  process.env.COWMAP_DEBUG = '';
  const originalOut = captureStream(process.stdout, out);
  const originalErr = captureStream(process.stderr, err);
  let status: number;
  try {
    status = await main(args);
  } finally {
    process.stdout.write = originalOut;
    process.stderr.write = originalErr;
    if (savedDebug === undefined) delete process.env.COWMAP_DEBUG;
    else process.env.COWMAP_DEBUG = savedDebug;
  }
  return { args, status, stdout: Buffer.from(out.join('')), stderr: err.join('') };
}
