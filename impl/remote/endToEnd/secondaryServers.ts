// The far sides of the remote end-to-end tests (no tests here): nbdkit's file
// plugin (with filters), nbdkit's eval plugin over a file whose FLUSH fails on a
// schedule, qemu-nbd, each on 127.0.0.1 TCP or a Unix socket, each a process group
// of its own (detached) so that a test can SIGKILL the whole group, and every
// group still up when the test file ends is killed (after()). A server counts as
// up once a connect to its address succeeds.
// Test-only: nothing outside *.test.ts imports this folder.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

/** Where a server listens. */
export type Listen =
  | { readonly kind: 'tcp'; readonly port: number }
  | { readonly kind: 'unix'; readonly socketPath: string };

/** A port on 127.0.0.1 that was free a moment ago (the kernel picked it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/** The URL `cowmap init --secondary` takes for an export at `listen` (the default export ""). */
export function urlOf(listen: Listen): string {
  return listen.kind === 'tcp' ? `nbd://127.0.0.1:${listen.port}` : `nbd+unix:///?socket=${listen.socketPath}`;
}

/** A connect to `listen` succeeds (and is closed at once). */
function accepts(listen: Listen): Promise<boolean> {
  return new Promise((resolve) => {
    const socket =
      listen.kind === 'tcp' ? createConnection(listen.port, '127.0.0.1') : createConnection(listen.socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface SecondaryServer {
  readonly name: string;
  readonly listen: Listen;
  readonly url: string;
  /** The pid of the group leader (the server). */
  pid(): number;
  /** Standard error so far (the server's complaints, for assertion messages). */
  stderr(): string;
  /** SIGKILL of the whole group, and the exit waited for. Nothing when it is down. */
  kill(): Promise<void>;
  /** Starts it again with the same command (after kill). */
  restart(): Promise<void>;
  /** Sends `signal` to the group (SIGSTOP: a far side that hangs; SIGCONT: it wakes). */
  signal(signal: NodeJS.Signals): void;
}

const groups = new Set<ChildProcess>();
after(() => {
  for (const child of groups) killGroup(child);
});

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // The group is gone already.
  }
}

/**
 * Starts `command args` as a process group of its own and waits until `listen`
 * accepts a connection (at most `readyMs`). The process's environment is this
 * one's plus `env`.
 */
export async function startServer(
  name: string,
  command: string,
  args: readonly string[],
  listen: Listen,
  env: Readonly<Record<string, string>> = {},
  readyMs = 10_000,
): Promise<SecondaryServer> {
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let errors = '';
  const start = async (): Promise<void> => {
    // A SIGKILLed server leaves its socket file, and a new one refuses to bind over it.
    if (listen.kind === 'unix') rmSync(listen.socketPath, { force: true });
    const started = spawn(command, [...args], {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    });
    child = started;
    groups.add(started);
    started.stderr!.on('data', (chunk) => (errors += chunk));
    exited = new Promise((resolve) => started.once('exit', () => resolve()));
    const deadline = performance.now() + readyMs;
    while (!(await accepts(listen))) {
      if (started.exitCode !== null || performance.now() > deadline) {
        killGroup(started);
        throw new Error(`${name} did not come up on ${urlOf(listen)} (${command} ${args.join(' ')}):\n${errors}`);
      }
      await sleep(20);
    }
  };
  await start();
  return {
    name,
    listen,
    url: urlOf(listen),
    pid: () => child?.pid ?? -1,
    stderr: () => errors,
    kill: async () => {
      if (child !== null) killGroup(child);
      await exited;
    },
    restart: start,
    signal: (signal) => {
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null)
        process.kill(-child.pid, signal);
    },
  };
}

/** `nbdkit -f` listening at `listen`: the plugin and its parameters, filters first. */
function nbdkitArgs(listen: Listen, filters: readonly string[], plugin: readonly string[]): string[] {
  const where = listen.kind === 'tcp' ? ['-i', '127.0.0.1', '-p', String(listen.port)] : ['-U', listen.socketPath];
  // --exit-with-parent: nothing outlives the test runner, even if after() never runs.
  return ['-f', '--exit-with-parent', ...where, ...filters.map((filter) => `--filter=${filter}`), ...plugin];
}

/** nbdkit's file plugin on `file`, with filters and their parameters (error-pwrite-rate=30%, delay-write=5ms, ...). */
export function startNbdkitFile(
  file: string,
  listen: Listen,
  options: { filters?: readonly string[]; params?: readonly string[] } = {},
): Promise<SecondaryServer> {
  const args = nbdkitArgs(listen, options.filters ?? [], ['file', file, ...(options.params ?? [])]);
  return startServer(
    `nbdkit file${(options.filters ?? []).map((filter) => ` +${filter}`).join('')}`,
    'nbdkit',
    args,
    listen,
  );
}

/** What the eval plugin's FLUSH does (startNbdkitFlakyFlush). */
export interface FlakyFlush {
  /** Every this-many-th FLUSH fails with EIO (counted in `counterFile`, so the schedule repeats exactly). */
  readonly failEvery: number;
  readonly counterFile: string;
  /** FLUSHes fail only while this file exists (nbdkit's error-file idea); absent: always on schedule. */
  readonly triggerFile?: string;
}

/**
 * nbdkit's eval plugin over `file` whose FLUSHes fail on a schedule (after syncing
 * nothing): nbdkit 1.32's error filter cannot fail a FLUSH, and a counter makes the
 * schedule repeatable where a rate would not be (the error filter has no seed).
 * Reads and writes are dd on the file; every request runs a shell, so keep the
 * volumes small. Filters (the error filter for WRITEs, say) go on top.
 */
export function startNbdkitFlakyFlush(
  file: string,
  listen: Listen,
  flaky: FlakyFlush,
  options: { filters?: readonly string[]; params?: readonly string[] } = {},
): Promise<SecondaryServer> {
  const armed = flaky.triggerFile === undefined ? 'true' : '[ -e "$TRIG" ]';
  const flush =
    `if ${armed}; then n=$(( $(cat "$CTR" 2>/dev/null || echo 0) + 1 )); echo $n > "$CTR"; ` +
    'if [ $(( n % $EVERY )) -eq 0 ]; then echo "EIO injected flush failure $n" >&2; exit 1; fi; fi; sync "$IMG"';
  const plugin = [
    'eval',
    'get_size=stat -Lc %s "$IMG"',
    'pread=dd if="$IMG" skip=$4 count=$3 iflag=skip_bytes,count_bytes status=none',
    'pwrite=dd of="$IMG" seek=$4 conv=notrunc oflag=seek_bytes status=none',
    'can_write=exit 0',
    'can_flush=exit 0',
    `flush=${flush}`,
    'thread_model=echo serialize_all_requests',
    ...(options.params ?? []),
  ];
  const env = { IMG: file, CTR: flaky.counterFile, EVERY: String(flaky.failEvery), TRIG: flaky.triggerFile ?? '' };
  const args = nbdkitArgs(listen, options.filters ?? [], plugin);
  return startServer('nbdkit eval (flaky flush)', 'nbdkit', args, listen, env);
}

/**
 * Fault windows: a shell loop (a process group of its own) that creates
 * `triggerFile` for `onMs`, removes it for `offMs`, and again, so that an
 * error-*-file or FlakyFlush trigger injects faults only inside the windows. A
 * child, not a timer here: the test's own thread blocks while an in-process `cowmap
 * cycle` waits on its link. Between windows every attempt can succeed, so a retried
 * call always gets through within its budget, whatever the rate inside the windows.
 */
export function startFaultWindows(triggerFile: string, onMs: number, offMs: number): { stop(): Promise<void> } {
  const loop = `while :; do : > "$T"; sleep ${onMs / 1000}; rm -f "$T"; sleep ${offMs / 1000}; done`;
  const child = spawn('sh', ['-c', loop], { detached: true, stdio: 'ignore', env: { ...process.env, T: triggerFile } });
  groups.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    stop: async () => {
      killGroup(child);
      await exited;
      rmSync(triggerFile, { force: true });
    },
  };
}

/** FLUSHes failed so far by a startNbdkitFlakyFlush server (its counter over its schedule). */
export function flushesFailed(flaky: FlakyFlush): number {
  if (!existsSync(flaky.counterFile)) return 0;
  return Math.floor(Number(readFileSync(flaky.counterFile, 'utf8').trim()) / flaky.failEvery);
}

/** Errors nbdkit's error filter injected so far, by the lines it logs ("injecting EIO error into pwrite"). */
export function injectedErrors(server: SecondaryServer): number {
  return server.stderr().match(/injecting \w+ error into/g)?.length ?? 0;
}

/** qemu-nbd serving the raw `file` (persistent, several clients at once, writeback cache with FLUSH honoured). */
export function startQemuNbd(file: string, listen: Listen): Promise<SecondaryServer> {
  const where = listen.kind === 'tcp' ? ['-b', '127.0.0.1', '-p', String(listen.port)] : ['-k', listen.socketPath];
  return startServer(
    'qemu-nbd',
    'qemu-nbd',
    ['-f', 'raw', '-x', '', '--persistent', '--shared=4', ...where, file],
    listen,
  );
}
