// `cowmap adapter`: the reference server (adapterServer.ts) on a process's
// standard streams. One JSON request a line on stdin, one JSON response a line
// on stdout, strictly in order; logs go to stderr only; the process exits with 0
// when stdin closes, and with failpointExitCode, unanswered, at a failpoint.
//
// Input is paused while a line waits to be served or the client is not reading
// the answers, so memory stays within one chunk of input, one line and one answer.

import type { Readable, Writable } from 'node:stream';
import {
  AdapterServer,
  type AdapterServerOptions,
  failpointExitCode,
  type HandleResult,
  logToStderr,
  requestLineBytesMax,
} from './adapterServer.ts';
import { type LineEvent, LineSplitter } from './lines.ts';

export interface ServeOptions extends AdapterServerOptions {
  readonly input?: Readable;
  readonly output?: Writable;
  /** Ends the process (default process.exit): at a failpoint, and when output is gone. */
  readonly exit?: (code: number) => void;
  readonly maxLineBytes?: number;
}

/** How long the answers already written may take to drain before a stop exits anyway. */
const drainBeforeExitMs = 1000;

/**
 * Serves requests from `input` (stdin) until it ends; resolves with the exit
 * status (0). At a failpoint it calls `exit(failpointExitCode)` without answering.
 */
export function serveAdapter(options: ServeOptions = {}): Promise<number> {
  return new Promise<number>((resolve) => new ServeSession(options, resolve).listen());
}

/** One run of the server over a pair of streams. */
class ServeSession {
  private readonly input: Readable;
  private readonly output: Writable;
  private readonly exit: (code: number) => void;
  private readonly log: (line: string) => void;
  private readonly maxLineBytes: number;
  private readonly server: AdapterServer;
  private readonly splitter: LineSplitter;
  /** Lines read but not yet served. */
  private readonly queue: LineEvent[] = [];
  /** The output is full: serving waits for its drain. */
  private blocked = false;
  /** The input has ended: once the queue is served, the session ends. */
  private ended = false;
  private stopped = false;

  constructor(
    options: ServeOptions,
    private readonly resolve: (code: number) => void,
  ) {
    this.input = options.input ?? process.stdin;
    this.output = options.output ?? process.stdout;
    this.exit = options.exit ?? ((code: number) => process.exit(code));
    this.log = options.log ?? logToStderr;
    this.maxLineBytes = options.maxLineBytes ?? requestLineBytesMax;
    this.server = new AdapterServer(options);
    this.splitter = new LineSplitter(this.maxLineBytes);
  }

  listen(): void {
    this.input.on('data', (chunk: Buffer | string) => this.onData(chunk));
    this.input.once('end', () => this.onEnd());
    this.input.once('error', (error) => this.stop(1, `reading requests failed: ${error.message}`));
    this.output.on('error', (error) => this.onOutputError(error));
  }

  private onData(chunk: Buffer | string): void {
    if (this.stopped) return;
    this.queue.push(...this.splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
    this.input.pause();
    this.pump();
  }

  private onEnd(): void {
    if (this.stopped) return;
    this.ended = true;
    const last = this.splitter.flush();
    if (last !== null) this.queue.push(last);
    this.pump();
  }

  /** The client went away: nobody can read an answer any more. */
  private onOutputError(error: Error): void {
    if (this.stopped) return;
    this.server.shutdown();
    this.stop(0, `writing answers failed (${(error as NodeJS.ErrnoException).code ?? error.message}); exiting`);
  }

  /** Serves the queued lines while the output takes answers; then reads on, or ends after the last line. */
  private pump(): void {
    while (!this.stopped && !this.blocked && this.queue.length > 0) {
      const event = this.queue.shift()!;
      this.answer(
        event.kind === 'oversized'
          ? this.server.oversized(event.length, this.maxLineBytes)
          : this.server.handleLine(event.bytes),
      );
    }
    if (this.stopped || this.blocked || this.queue.length > 0) return;
    if (!this.ended) {
      this.input.resume();
      return;
    }
    this.stopped = true;
    this.server.shutdown();
    this.resolve(0);
  }

  private answer(result: HandleResult | null): void {
    if (result === null) return;
    if (result.kind === 'crash') {
      const crash = result.crash;
      this.stop(
        failpointExitCode,
        `failpoint: ${crash.mode} crash after durable call ${crash.ioCount}; exiting with ${failpointExitCode} without answering`,
      );
      return;
    }
    if (!this.output.write(encodeAnswer(result.response))) {
      this.blocked = true;
      this.output.once('drain', () => {
        this.blocked = false;
        this.pump();
      });
    }
  }

  /** Stops serving and exits with `code`, once the answers already written have drained (they answered earlier requests). */
  private stop(code: number, why: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.queue.length = 0;
    this.input.pause();
    this.input.removeAllListeners('data');
    this.log(why);
    const pending = (this.output as Writable & { writableLength?: number }).writableLength ?? 0;
    if (pending === 0) {
      this.exit(code);
      return;
    }
    const timer = setTimeout(() => this.exit(code), drainBeforeExitMs);
    this.output.once('drain', () => {
      clearTimeout(timer);
      this.exit(code);
    });
  }
}

/** An answer as one line; one that cannot be encoded becomes an E_IO answer to the same id. */
function encodeAnswer(response: Record<string, unknown>): string {
  try {
    return `${JSON.stringify(response)}\n`;
  } catch (error) {
    const message = `internal error: the answer cannot be encoded: ${String(error)}`;
    return `${JSON.stringify({ id: response.id ?? null, ok: false, error: { code: 'E_IO', message }, io: 0 })}\n`;
  }
}
