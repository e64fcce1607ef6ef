// One child process of an adapter command: spawned in its own process group,
// its standard output split into lines (one answer per request), its standard
// error's tail kept for messages, and its end awaited without polling where an
// event says it.

import { spawn, type ChildProcess } from 'node:child_process';
import { LineSplitter, preview } from './lines.ts';

// ---------------------------------------------------------------------------
// Its standard error

/** The last `max` bytes of a stream. */
class ByteRing {
  private chunks: Buffer[] = [];
  private length = 0;
  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    if (this.max <= 0) return;
    if (chunk.length >= this.max) {
      this.chunks = [Buffer.from(chunk.subarray(chunk.length - this.max))];
      this.length = this.max;
      return;
    }
    this.chunks.push(Buffer.from(chunk));
    this.length += chunk.length;
    while (this.length > this.max) {
      const first = this.chunks[0]!;
      const excess = this.length - this.max;
      if (first.length <= excess) {
        this.chunks.shift();
        this.length -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.length -= excess;
      }
    }
  }

  text(): string {
    return Buffer.concat(this.chunks, this.length).toString('utf8');
  }
}

// ---------------------------------------------------------------------------
// One child process

interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

function describeExit(exit: ExitStatus | null, spawnError: Error | null): string {
  if (spawnError !== null) return `could not be started: ${spawnError.message}`;
  if (exit === null) return 'closed its standard output';
  return exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

type NextLine =
  | { readonly kind: 'line'; readonly bytes: Buffer }
  | { readonly kind: 'closed' }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'violation'; readonly message: string };

export class AdapterProcess {
  private readonly child: ChildProcess;
  private readonly splitter: LineSplitter;
  private readonly stderrRing: ByteRing;
  private received: Buffer | null = null;
  private awaiting = false;
  private wake: (() => void) | null = null;
  /** A protocol violation seen on stdout (a line answering nothing, a line too long). */
  violation: string | null = null;
  exit: ExitStatus | null = null;
  spawnError: Error | null = null;
  /** The process is gone and its standard output was read to the end. */
  closed = false;
  private readonly closedPromise: Promise<void>;

  constructor(
    command: readonly string[],
    options: { cwd?: string; env?: NodeJS.ProcessEnv; maxLineBytes: number; stderrBytesMax: number },
  ) {
    this.splitter = new LineSplitter(options.maxLineBytes);
    this.stderrRing = new ByteRing(options.stderrBytesMax);
    let markClosed!: () => void;
    this.closedPromise = new Promise((resolve) => (markClosed = resolve));
    const onClosed = (): void => {
      if (this.closed) return;
      this.closed = true;
      markClosed();
      this.notify();
    };
    this.child = spawn(command[0]!, command.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    this.child.on('error', (error) => {
      // Only a failed spawn (or a failed kill, which we never rely on) lands here.
      if (this.child.pid === undefined) {
        this.spawnError = error;
        onClosed();
      }
    });
    this.child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      // Whatever the process left running in its group would hold the pipes open.
      this.killGroup();
    });
    this.child.on('close', onClosed);
    this.child.stdin!.on('error', () => {
      /* EPIPE: the process is gone; its exit tells the rest */
    });
    this.child.stdout!.on('data', (chunk: Buffer) => this.onStdout(chunk));
    this.child.stderr!.on('data', (chunk: Buffer) => this.stderrRing.push(chunk));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get stderr(): string {
    return this.stderrRing.text();
  }

  describeExit(): string {
    return describeExit(this.exit, this.spawnError);
  }

  private onStdout(chunk: Buffer): void {
    if (this.violation !== null) return;
    for (const event of this.splitter.push(chunk)) {
      if (event.kind === 'oversized') {
        this.setViolation(`printed a line longer than ${this.splitter.maxLineBytes} bytes`);
        return;
      }
      if (!this.awaiting || this.received !== null) {
        this.setViolation(`printed a line that answers no request: ${preview(event.bytes)}`);
        return;
      }
      this.received = event.bytes;
      this.awaiting = false;
    }
    if (this.splitter.overflowing) this.setViolation(`printed a line longer than ${this.splitter.maxLineBytes} bytes`);
    this.notify();
  }

  private setViolation(message: string): void {
    this.violation = message;
    this.killGroup();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Writes one request line and makes the next line its answer. */
  send(line: string): void {
    this.received = null;
    this.awaiting = true;
    if (!this.closed && this.child.stdin!.writable) this.child.stdin!.write(line);
  }

  async nextLine(timeoutMs: number): Promise<NextLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.violation !== null) return { kind: 'violation', message: this.violation };
      if (this.received !== null) {
        const bytes = this.received;
        this.received = null;
        return { kind: 'line', bytes };
      }
      if (this.closed) return { kind: 'closed' };
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        this.awaiting = false;
        return { kind: 'timeout' };
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  killGroup(): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // ESRCH: the group is gone already. Fall back on the child alone.
      if (this.exit === null) this.child.kill('SIGKILL');
    }
  }

  /**
   * Resolves true once no process of its group is left, false at the timeout. A
   * wrapper's children killed with the group are reaped by init, not by us: until
   * then they are zombies, and a pid lock (the reference's) still sees them alive.
   */
  async waitGroupGone(timeoutMs: number): Promise<boolean> {
    const pid = this.child.pid;
    if (pid === undefined) return true;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        process.kill(-pid, 0);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
      }
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  endInput(): void {
    this.child.stdin!.end();
  }

  /** Resolves true once the process is gone and its output read, false at the timeout. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([this.closedPromise.then(() => true), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}
