// Support of the NBD end-to-end tests (no tests here): a temporary root removed after
// the test file, fresh volumes, the external tools (skipped with the reason when
// missing), a command runner that keeps the event loop free, and `cowmap serve` as a
// child process with its stdout lines.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';

export const root = mkdtempSync(join(tmpdir(), 'cowmap-nbd-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
export function freshDir(): string {
  return join(root, `v${dirs++}`);
}

export function createVolume(regions: number, regionSize: number): ReplicatedVolume {
  return ReplicatedVolume.create(new NodeStorage(), freshDir(), { regions, regionSize });
}

function which(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** undefined when every tool is there, else the reason to skip. */
export function missing(...tools: string[]): string | undefined {
  const absent = tools.filter((tool) => !which(tool));
  if (absent.length === 0) return undefined;
  const reason = `not installed: ${absent.join(', ')} (apt-get install nbdkit libnbd-bin qemu-utils e2fsprogs)`;
  process.stderr.write(`# skipped an NBD end-to-end test: ${reason}\n`);
  return reason;
}

/** Runs a command without blocking the event loop (an in-process server must keep serving). */
export function run(
  cmd: string,
  args: string[],
  options: { allowFail?: boolean } = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => {
      const result = { status: status ?? -1, stdout, stderr };
      if (status !== 0 && options.allowFail !== true)
        reject(new Error(`${cmd} ${args.join(' ')} exited ${status}\n${stdout}\n${stderr}`));
      else resolve(result);
    });
  });
}

/** The `cowmap` command itself, as users run it. */
export const cowmapScript = join(import.meta.dirname, '../../bin/cowmap.js');

/** A `cowmap serve` child and its stdout lines. */
export function serveChild(args: string[]): {
  child: ChildProcess;
  lines: string[];
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<string>;
} {
  const child = spawn(process.execPath, [cowmapScript, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let partial = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (chunk) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const listener of listeners) listener();
  });
  const waitFor = (pattern: RegExp, timeoutMs = 20000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const line = lines.find((candidate) => pattern.test(candidate));
        if (line === undefined) return false;
        listeners.delete(listener);
        clearTimeout(timer);
        resolve(line);
        return true;
      };
      const listener = (): void => void check();
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`no line ${pattern} from cowmap serve:\n${lines.join('\n')}`));
      }, timeoutMs);
      listeners.add(listener);
      check();
    });
  return { child, lines, waitFor };
}
