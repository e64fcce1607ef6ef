// `cowmap serve` (or another command that serves: `cowmap receive`) as a child
// process, as users run it (node bin/cowmap.js serve), for the tests that kill it,
// signal it or measure its memory. The child runs in a process group of its own
// (detached), so that a test can kill the group, and must: `stop()` in a finally
// (or t.after) kills what is left. Test-only: nothing outside *.test.ts imports this file.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** The `cowmap` command's script. */
export const cowmapScript = join(import.meta.dirname, '../../bin/cowmap.js');

export interface ServeChild {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Standard output's lines so far. */
  readonly lines: string[];
  /** Standard error so far. */
  stderr(): string;
  /** Resolves to the first line matching `pattern`; rejects after `timeoutMs` or when the child exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves to the exit code (or the signal's name) once the child has exited. */
  readonly exited: Promise<number | string>;
  /** Sends `signal` to the child's whole process group (nothing if it has exited). */
  signalGroup(signal: NodeJS.Signals): void;
  /** Kills the group (SIGKILL) unless it has exited, and waits for the exit. */
  stop(): Promise<void>;
}

/** The commands that serve until stopped. */
export type ServingCommand = 'serve' | 'receive';

export function startServeChild(args: readonly string[], command: ServingCommand = 'serve'): ServeChild {
  const child = spawn(process.execPath, [cowmapScript, command, ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  let exitedWith: number | string | null = null;
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const listener of [...listeners]) listener();
  };
  child.stdout!.on('data', (chunk) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    notify();
  });
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      exitedWith = code ?? signal ?? -1;
      resolve(exitedWith);
      notify();
    });
  });
  const waitFor = (pattern: RegExp, timeoutMs = 20_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const finish = (error: Error | null, line?: string): void => {
        listeners.delete(check);
        clearTimeout(timer);
        if (error === null) resolve(line!);
        else reject(error);
      };
      const check = (): void => {
        const line = lines.find((candidate) => pattern.test(candidate));
        if (line !== undefined) finish(null, line);
        else if (exitedWith !== null)
          finish(
            new Error(`cowmap ${command} exited (${exitedWith}) before ${pattern}:\n${lines.join('\n')}\n${stderr}`),
          );
      };
      const timer = setTimeout(
        () => finish(new Error(`no line ${pattern} from cowmap ${command}:\n${lines.join('\n')}\n${stderr}`)),
        timeoutMs,
      );
      listeners.add(check);
      check();
    });
  const signalGroup = (signal: NodeJS.Signals): void => {
    if (exitedWith !== null || child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // The group is gone already.
    }
  };
  const stop = async (): Promise<void> => {
    signalGroup('SIGKILL');
    await exited;
  };
  return { child, pid: child.pid!, lines, stderr: () => stderr, waitFor, exited, signalGroup, stop };
}

/** A `cowmap` command run to its end (its own process group is not needed: it does not serve). */
export function runCowmap(args: readonly string[]): { status: number; stdout: Buffer; stderr: string } {
  const result = spawnSync(process.execPath, [cowmapScript, ...args], { maxBuffer: 64 << 20 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr.toString('utf8') };
}
