// The server behind the fault proxy (nbdkit file, qemu-nbd, `cowmap receive`), as
// the proxy drives it: started on a Unix socket, killed (SIGKILL: a crash, not a
// clean stop), started again, and its files copied and put back, so that the proxy
// can restart it on the files it held at its last FLUSH (a power loss) or at an
// earlier mark (an older image). The server runs in a process group of its own,
// ended by its group (also when the process that started it exits).

import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { basename, join } from 'node:path';

/** How to run the far side: a command that serves NBD on `socketPath`, and the files it keeps its state in. */
export interface FarSideSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly socketPath: string;
  /** Files or directories holding the far side's state: what a snapshot copies. */
  readonly statePaths: readonly string[];
  /** Where snapshots go (made if missing). */
  readonly snapshotDir: string;
  /** The file whose bytes are the export's, byte for byte (nbdkit file), when there is one: torn power losses write it. */
  readonly plainImagePath?: string;
}

const readyTimeoutMs = 30_000;
const snapshotAttemptsMax = 5;

/** A file a server writes and renames over another: not state. */
const notTemporary = (source: string) => !source.endsWith('.tmp');
const readyPollMs = 10;

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path: socketPath });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The far sides' groups running now: ended when this process exits, however it does. */
const liveGroups = new Set<number>();
process.on('exit', () => {
  for (const pid of liveGroups) killGroup(pid);
});

function killGroup(pid: number | undefined): void {
  if (pid === undefined || pid < 0) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch (error) {
    // ESRCH: the group is gone already.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

export class FarSide {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private stderrText = '';
  /** Starts, counted: the first one and every restart. */
  starts = 0;
  /** How the server last ended when nobody killed it (a crash of the server itself), null while it never did. */
  unexpectedExit: string | null = null;
  /** Told when the server exits by itself (the proxy starts it again). */
  onUnexpectedExit: ((why: string) => void) | null = null;

  constructor(readonly spec: FarSideSpec) {
    mkdirSync(spec.snapshotDir, { recursive: true });
  }

  /** Starts the server and resolves once a connect to its socket succeeds. */
  async start(): Promise<void> {
    if (this.child !== null) throw new Error('far side: already running');
    // A socket file left by a killed server would make the new one fail to listen.
    if (existsSync(this.spec.socketPath)) unlinkSync(this.spec.socketPath);
    const child = spawn(this.spec.command, [...this.spec.args], {
      cwd: this.spec.cwd,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    liveGroups.add(child.pid ?? -1);
    this.starts++;
    let exited = false;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        exited = true;
        if (this.child === child) {
          this.unexpectedExit = `${this.spec.command} exited by itself (code ${code}, signal ${signal}): ${this.stderrHead}`;
          this.onUnexpectedExit?.(this.unexpectedExit);
        }
        resolve();
      });
      child.once('error', (error) => {
        this.stderrText += `spawn: ${error.message}\n`;
        exited = true;
        resolve();
      });
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      if (this.stderrText.length < 4000) this.stderrText += chunk.toString('utf8');
    });
    const deadline = Date.now() + readyTimeoutMs;
    while (!(await canConnect(this.spec.socketPath))) {
      if (exited) throw new Error(`far side ${this.spec.command} exited before it listened: ${this.stderrText.trim()}`);
      if (Date.now() > deadline) throw new Error(`far side ${this.spec.command} did not listen in time`);
      await pause(readyPollMs);
    }
  }

  /** SIGKILL, as a crash of the far side; resolves once it has exited. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) killGroup(child.pid);
    await this.exited;
    liveGroups.delete(child.pid ?? -1);
  }

  /**
   * The far side's state files copied under the snapshot dir's `name`. A running
   * server may rename or remove a file of its directory meanwhile (a status file
   * written through a temporary one): temporary files are left out, and a copy that
   * loses a file on the way is made again.
   */
  snapshot(name: string): void {
    const target = join(this.spec.snapshotDir, name);
    for (let attempt = 1; ; attempt++) {
      rmSync(target, { recursive: true, force: true });
      mkdirSync(target);
      try {
        for (const path of this.spec.statePaths) {
          if (existsSync(path)) cpSync(path, join(target, basename(path)), { recursive: true, filter: notTemporary });
        }
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= snapshotAttemptsMax) throw error;
      }
    }
  }

  /** Where snapshot `name` keeps its copy of state path `path` (for readers of a snapshot). */
  snapshotPathOf(name: string, path: string): string {
    return join(this.spec.snapshotDir, name, basename(path));
  }

  hasSnapshot(name: string): boolean {
    return existsSync(join(this.spec.snapshotDir, name));
  }

  /** The state files replaced by snapshot `name` (the server must be stopped). */
  restore(name: string): void {
    if (this.child !== null) throw new Error('far side: restore while running');
    for (const path of this.spec.statePaths) {
      rmSync(path, { recursive: true, force: true });
      const copy = this.snapshotPathOf(name, path);
      if (existsSync(copy)) cpSync(copy, path, { recursive: true });
    }
  }

  /** The server's pid (its group's id), or null when it is not running. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get stderrHead(): string {
    return this.stderrText.trim().split('\n').slice(0, 3).join(' ');
  }
}
