// The plain driver's client of one adapter process: one request in flight, a line
// written and a line read, nothing checked (conformSpeed.ts).

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { requestTimeoutMs } from './conformSpeedSettings.ts';

/** One adapter process and one request in flight: write a line, read a line. */
export class PlainClient {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffered = '';
  private readonly lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private ended = false;
  private nextId = 1;

  constructor(command: readonly string[], cwd: string) {
    this.child = spawn(command[0]!, command.slice(1), { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => {
      this.buffered += chunk;
      for (let at = this.buffered.indexOf('\n'); at >= 0; at = this.buffered.indexOf('\n')) {
        this.deliver(this.buffered.slice(0, at));
        this.buffered = this.buffered.slice(at + 1);
      }
    });
    this.child.stdout.on('end', () => this.end());
    // Its logs are not ours to read; drained so that the pipe never fills.
    this.child.stderr.resume();
    // A process that cannot start or goes away shows as a request without an answer.
    this.child.on('error', () => this.end());
    this.child.stdin.on('error', () => this.end());
  }

  private end(): void {
    this.ended = true;
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.(null);
  }

  private deliver(line: string): void {
    if (this.waiting !== null) {
      const waiting = this.waiting;
      this.waiting = null;
      waiting(line);
    } else {
      this.lines.push(line);
    }
  }

  private nextLine(): Promise<string | null> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        resolve(null);
      }, requestTimeoutMs);
      this.waiting = (answer) => {
        clearTimeout(timer);
        resolve(answer);
      };
    });
  }

  /** Sends one request and returns its parsed answer. */
  async request(op: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    this.child.stdin.write(`${JSON.stringify({ id, op, ...fields })}\n`);
    const line = await this.nextLine();
    if (line === null)
      throw new Error(`driver: no answer to ${op} (request ${id}) from ${this.child.spawnargs.join(' ')}`);
    const answer = JSON.parse(line) as Record<string, unknown>;
    if (answer.id !== id) throw new Error(`driver: answer for request ${String(answer.id)} to request ${id}`);
    return answer;
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null || this.child.pid === undefined) resolve();
      else this.child.once('exit', () => resolve());
    });
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), requestTimeoutMs);
    await exited;
    clearTimeout(timer);
  }
}
