// The remote section's NBD server: `nbdkit file dir=DIR`, which serves every file
// of DIR as an export named after it (the volume's secondary and nbdcopy's target
// side by side on the same server, with the same filters), on a Unix socket or on
// TCP 127.0.0.1, with or without the delay filter. Started in a process group of
// its own, ready once a connect succeeds, ended by its group (TERM, KILL after a
// grace period).

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';

/** Where the server listens; the address stays the same across the server's restarts. */
export type RemoteEndpoint =
  | { readonly transport: 'unix'; readonly socketPath: string }
  | { readonly transport: 'tcp'; readonly port: number };

/** nbdkit's delay filter's parameters (they follow the plugin's): every request kind a cycle or a copy makes, delayed alike. */
export function delayParameters(delayMs: number): string[] {
  // A cycle reads the control block at connect (read), writes its regions and control
  // blocks (write); init zeroes the image (zero). The filter has no FLUSH delay.
  return [`delay-write=${delayMs}ms`, `delay-read=${delayMs}ms`, `delay-zero=${delayMs}ms`];
}

/** The URL of export `name` at `endpoint`. */
export function exportUrl(endpoint: RemoteEndpoint, name: string): string {
  return endpoint.transport === 'unix'
    ? `nbd+unix:///${name}?socket=${endpoint.socketPath}`
    : `nbd://127.0.0.1:${endpoint.port}/${name}`;
}

function canConnect(endpoint: RemoteEndpoint): Promise<boolean> {
  return new Promise((resolve) => {
    const socket =
      endpoint.transport === 'unix' ? connect({ path: endpoint.socketPath }) : connect(endpoint.port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const readyTimeoutMs = 30_000;
const stopGraceMs = 10_000;

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

export class RemoteServer {
  private readonly exited: Promise<void>;
  private done = false;
  private stderrText = '';

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        this.done = true;
        resolve();
      });
      child.once('error', (error) => {
        this.stderrText += error.message;
        this.done = true;
        resolve();
      });
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      if (this.stderrText.length < 2000) this.stderrText += chunk.toString('utf8');
    });
    // Ended with the bench, however it ends.
    process.once('exit', () => this.child.pid !== undefined && !this.done && signalGroup(this.child.pid, 'SIGKILL'));
  }

  /** `nbdkit file dir=exportDir` at `endpoint`, with the delay filter when delayMs > 0; resolves once it listens. */
  static async start(exportDir: string, endpoint: RemoteEndpoint, delayMs: number): Promise<RemoteServer> {
    const listen =
      endpoint.transport === 'unix' ? ['-U', endpoint.socketPath] : ['-i', '127.0.0.1', '-p', String(endpoint.port)];
    if (endpoint.transport === 'unix' && existsSync(endpoint.socketPath)) unlinkSync(endpoint.socketPath);
    const args = ['-f', '--exit-with-parent', ...listen, ...(delayMs > 0 ? ['--filter=delay'] : [])];
    args.push('file', `dir=${exportDir}`, ...(delayMs > 0 ? delayParameters(delayMs) : []));
    const child = spawn('nbdkit', args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    const server = new RemoteServer(child);
    const deadline = Date.now() + readyTimeoutMs;
    while (!(await canConnect(endpoint))) {
      if (server.done || Date.now() > deadline) {
        await server.stop();
        throw new Error(`nbdkit ${args.join(' ')} did not listen: ${server.stderrText.trim()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return server;
  }

  async stop(): Promise<void> {
    const pid = this.child.pid;
    if (this.done || pid === undefined) return;
    signalGroup(pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), stopGraceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
