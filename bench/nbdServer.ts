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
const stderrKeptChars = 4000;

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
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal, killed: this.killed };
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
      this.stderrText = (this.stderrText + chunk.toString('utf8')).slice(-stderrKeptChars);
    });
  }

  get uri(): string {
    return `nbd://${host}:${this.port}`;
  }

  get stderrTail(): string {
    return this.stderrText.trim().split('\n').slice(-3).join(' ');
  }

  /** Resolves once a TCP connect succeeds; throws when the server exits first or does not listen in time. */
  async ready(): Promise<void> {
    const deadline = Date.now() + readyTimeoutMs;
    while (this.exit === null) {
      if (await canConnect(this.port)) return;
      if (Date.now() > deadline) throw new Error(`${this.name} did not listen on port ${this.port} in time`);
      await pause(connectRetryMs);
    }
    throw new Error(`${this.name} exited before it listened (${JSON.stringify(this.exit)}): ${this.stderrTail}`);
  }

  /** TERM to the whole group, KILL after the grace period; resolves with how it ended. */
  async stop(): Promise<ServerExit> {
    if (this.exit !== null) return this.exit;
    const pid = this.child.pid;
    if (pid === undefined) return this.exited;
    signalGroup(pid, 'SIGTERM');
    const timer = setTimeout(() => {
      this.killed = true;
      signalGroup(pid, 'SIGKILL');
    }, stopGraceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
      // Whatever the leader left behind in its group goes too.
      signalGroup(pid, 'SIGKILL');
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
