// One NBD server under the bench (cowmap serve, nbdkit, qemu-nbd): started in a
// process group of its own, ready once a TCP connect to its port succeeds, its
// stdout kept line by line with the time each line arrived, and stopped by its
// whole group (TERM, then KILL after a grace period), so that no wrapper can leave
// the server itself running.

import { type ChildProcess, spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { secondsSince } from './stats.ts';

const host = '127.0.0.1';
const readyTimeoutMs = 60_000;
const connectRetryMs = 50;
const stopGraceMs = 10_000;
const stderrKeptChars = 2000;

/** A port that was free a moment ago on 127.0.0.1 (the kernel's choice). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port === 0 ? reject(new Error('freePort: no port')) : resolve(port)));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A line of the server's stdout and when it arrived (seconds of the bench's monotonic clock). */
export interface ServerLine {
  readonly text: string;
  readonly atSeconds: number;
}

/** How the server ended: its exit code or signal, and whether the TERM had to be followed by a KILL. */
export interface ServerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly killed: boolean;
}

/**
 * The groups of the servers running now. A server has a group of its own, so a
 * Ctrl-C or a TERM to the bench does not reach it: while any runs, the bench ends
 * them before it dies of such a signal, and on any exit.
 */
const liveGroups = new Set<number>();

function endLiveGroups(): void {
  for (const pid of liveGroups) signalGroup(pid, 'SIGKILL');
  liveGroups.clear();
}

function dieOf(signal: NodeJS.Signals): void {
  endLiveGroups();
  untrackSignals();
  process.kill(process.pid, signal);
}

function trackSignals(): void {
  if (liveGroups.size > 0) return;
  process.on('SIGINT', dieOf);
  process.on('SIGTERM', dieOf);
  process.on('exit', endLiveGroups);
}

/** The server's group is no longer ours to end once its leader has exited (its id may be reused). */
function forget(pid: number | undefined): void {
  if (pid === undefined || !liveGroups.delete(pid)) return;
  if (liveGroups.size === 0) untrackSignals();
}

function untrackSignals(): void {
  process.off('SIGINT', dieOf);
  process.off('SIGTERM', dieOf);
  process.off('exit', endLiveGroups);
}

export class NbdServer {
  readonly lines: ServerLine[] = [];
  private stderrText = '';
  private readonly child: ChildProcess;
  private readonly exited: Promise<ServerExit>;
  private exit: ServerExit | null = null;
  private killed = false;

  /**
   * Starts `command args` (cwd `cwd`) in its own process group. `clock` is the
   * reading of process.hrtime.bigint() that line times count from.
   */
  constructor(
    readonly name: string,
    readonly port: number,
    command: string,
    args: readonly string[],
    cwd: string,
    private readonly clock: bigint,
  ) {
    this.child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = this.child.pid;
    if (pid !== undefined) {
      trackSignals();
      liveGroups.add(pid);
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal, killed: this.killed };
        forget(this.child.pid);
        resolve(this.exit);
      });
      this.child.once('error', (error) => {
        this.stderrText += `spawn: ${error.message}\n`;
        this.exit = { code: null, signal: null, killed: false };
        resolve(this.exit);
      });
    });
    createInterface({ input: this.child.stdout! }).on('line', (text) => {
      this.lines.push({ text, atSeconds: secondsSince(this.clock) });
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      // The first failure says most; what follows it (a stack, the same again) says less.
      if (this.stderrText.length < stderrKeptChars) this.stderrText += chunk.toString('utf8').slice(0, stderrKeptChars);
    });
  }

  get uri(): string {
    return `nbd://${host}:${this.port}`;
  }

  /** The first lines of the server's stderr, in one line. */
  get stderrHead(): string {
    return this.stderrText.trim().split('\n').slice(0, 2).join(' ');
  }

  /** Resolves once a TCP connect succeeds; throws when the server exits first or does not listen in time. */
  async ready(): Promise<void> {
    const deadline = Date.now() + readyTimeoutMs;
    while (this.exit === null) {
      if (await canConnect(this.port)) return;
      if (Date.now() > deadline) throw new Error(`${this.name} did not listen on port ${this.port} in time`);
      await pause(connectRetryMs);
    }
    throw new Error(`${this.name} exited before it listened (${JSON.stringify(this.exit)}): ${this.stderrHead}`);
  }

  /** TERM to the whole group, KILL after the grace period; resolves with how it ended. */
  async stop(): Promise<ServerExit> {
    const pid = this.child.pid;
    if (this.exit !== null || pid === undefined) return this.exited;
    signalGroup(pid, 'SIGTERM');
    const timer = setTimeout(() => {
      this.killed = true;
      signalGroup(pid, 'SIGKILL');
    }, stopGraceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    // ESRCH: the group is gone already.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Starts a server and waits until it listens; stops it when it does not. */
export async function startServer(
  name: string,
  command: string,
  args: (port: number) => readonly string[],
  cwd: string,
  clock: bigint,
): Promise<NbdServer> {
  const port = await freePort();
  const server = new NbdServer(name, port, command, args(port), cwd, clock);
  try {
    await server.ready();
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}
