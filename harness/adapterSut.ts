// Any implementation, in any language, as a SystemUnderTest: started as a child
// process with a command line the user gives, and driven through the conformance
// adapter protocol v1 (docs/adapter.md): one JSON request per line on its standard
// input, one JSON response per line on its standard output, strictly in order.
//
//   SystemUnderTest          adapter protocol
//   create(geometry)         (close the last volume) open {dir: a fresh temp dir, create: true, ...}
//   apply(op)                write / read / startCycle / transfer / completeCycle
//   applyCrashing(op, c)     failpoint {crashAfterIo, mode, seed, torn}, then the op: an exit
//                            without an answer is {crashed: true}; an answer is
//                            {crashed: false, reply}, the failpoint is disarmed and the
//                            process keeps running, so that the caller can read its state
//                            and then crash() it (the crash "follows" the op, as in
//                            ReferenceSut, which the oracle relies on)
//   state()                  state
//   crash()                  SIGKILL between requests (its whole process group), and wait
//   recover()                a new process with the same command: hello, open {create: false}
//   close()                  close, end stdin, wait for the exit, remove the temp dir
//
// Whatever the implementation does wrong at the protocol level is a ProtocolError
// with a message that says what and ends with the tail of its standard error:
// a line that is not JSON, an answer with another id, without `ok`, without an
// error code, a line longer than the bound, a line that answers no request, no
// answer within the timeout, an exit at start or outside a failpoint, another
// protocol version in hello. After a ProtocolError the process is killed; close()
// still cleans up.
//
// The child runs in its own process group (spawn's `detached`), so that a kill
// reaches what a wrapper such as npx or a shell script started under it.

import { spawn, type ChildProcess } from 'node:child_process';
import { makeTemporaryDir, removeTree } from '../impl/nodeStorage.ts';
import type { Geometry } from '../model/types.ts';
import type { CrashingReply, CrashRequest, Feature, SutOp, SutReply, SutState, SystemUnderTest } from './sut.ts';

export const protocolVersion = 1;

/** Where every line sent and received goes, with notes on the process's life ("started pid 123", "killed"). */
export type Transcript = (direction: 'request' | 'response' | 'note', line: string) => void;

/** The temporary volume roots made by any AdapterSut of this process and not removed yet. */
const temporaryRoots = new Set<string>();

/** A fresh temporary directory that removeTemporaryDirs() removes unless removeTemporaryDir() did first. */
export function makeTrackedTemporaryDir(prefix = 'cowmap-adapter-'): string {
  const root = makeTemporaryDir(prefix);
  temporaryRoots.add(root);
  return root;
}

export function removeTemporaryDir(root: string): void {
  removeTree(root);
  temporaryRoots.delete(root);
}

/**
 * Removes every temporary volume directory an AdapterSut of this process made and
 * has not removed yet: for a SIGINT or SIGTERM handler, which cannot await the
 * suts' close(). Synchronous, and safe to call more than once.
 */
export function removeTemporaryDirs(): void {
  for (const root of [...temporaryRoots]) {
    try {
      removeTree(root);
    } catch {
      // Best effort at exit: a directory that cannot be removed stays, nothing else can be done.
    }
    temporaryRoots.delete(root);
  }
}

/** The most processes kept started ahead of restarts. */
export const standbyCountMax = 8;

const knownFeatures: readonly Feature[] = ['failpoint', 'power-loss', 'torn'];

// ---------------------------------------------------------------------------
// Lines

export type LineEvent = { readonly kind: 'line'; readonly bytes: Buffer } | { readonly kind: 'oversized'; readonly length: number };

/**
 * Splits a byte stream into lines ("\n", an optional "\r" before it dropped),
 * holding at most `maxLineBytes` of one line: a longer line is skipped as it
 * arrives and reported once its end is seen (`overflowing` says so at once).
 * Shared by both ends of the protocol.
 */
export class LineSplitter {
  private chunks: Buffer[] = [];
  private length = 0;
  private skipping = false;
  private skipped = 0;

  constructor(readonly maxLineBytes: number) {
    if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) throw new RangeError(`LineSplitter: maxLineBytes must be a positive integer, got ${maxLineBytes}`);
  }

  /** Whether the line now arriving is already longer than the bound. */
  get overflowing(): boolean {
    return this.skipping;
  }

  /** Bytes of an unfinished line held or skipped so far. */
  get pendingBytes(): number {
    return this.skipping ? this.skipped : this.length;
  }

  push(chunk: Uint8Array): LineEvent[] {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const events: LineEvent[] = [];
    let start = 0;
    while (start < buffer.length) {
      const newline = buffer.indexOf(0x0a, start);
      const end = newline < 0 ? buffer.length : newline;
      this.take(buffer.subarray(start, end));
      if (newline < 0) break;
      events.push(this.finishLine());
      start = newline + 1;
    }
    return events;
  }

  /** The last line when the stream ends without a newline (null when there is none). */
  flush(): LineEvent | null {
    if (!this.skipping && this.length === 0) return null;
    return this.finishLine();
  }

  private take(piece: Buffer): void {
    if (this.skipping) {
      this.skipped += piece.length;
    } else if (this.length + piece.length > this.maxLineBytes) {
      this.skipping = true;
      this.skipped = this.length + piece.length;
      this.chunks = [];
      this.length = 0;
    } else if (piece.length > 0) {
      this.chunks.push(piece);
      this.length += piece.length;
    }
  }

  private finishLine(): LineEvent {
    let event: LineEvent;
    if (this.skipping) {
      event = { kind: 'oversized', length: this.skipped };
    } else {
      let line = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      event = { kind: 'line', bytes: line };
    }
    this.chunks = [];
    this.length = 0;
    this.skipping = false;
    this.skipped = 0;
    return event;
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A line's text, or null when it is not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64 (the standard alphabet, padded), or null. */
export function decodeBase64(text: string): Buffer | null {
  if (text.length % 4 !== 0 || !base64Pattern.test(text)) return null;
  return Buffer.from(text, 'base64');
}

// ---------------------------------------------------------------------------
// Errors and the child's standard error

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    message: string,
    /** The tail of the implementation's standard error. */
    readonly stderr: string = '',
  ) {
    super(stderr.length > 0 ? `${message}\n--- its standard error (the last ${Buffer.byteLength(stderr)} bytes) ---\n${stderr.trimEnd()}` : `${message} (its standard error was empty)`);
  }
}

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

function preview(bytes: Uint8Array, max = 200): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, max)).toString('utf8');
  return JSON.stringify(text) + (bytes.byteLength > max ? ` (${bytes.byteLength} bytes in all)` : '');
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

type NextLine = { readonly kind: 'line'; readonly bytes: Buffer } | { readonly kind: 'closed' } | { readonly kind: 'timeout' } | { readonly kind: 'violation'; readonly message: string };

class AdapterProcess {
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

  constructor(command: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; maxLineBytes: number; stderrBytesMax: number }) {
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

// ---------------------------------------------------------------------------
// The SystemUnderTest

export interface AdapterSutOptions {
  /** How reports name it; default: the name and version from hello, or the command line. */
  readonly name?: string;
  /** Every request, hello included: no answer in time is a ProtocolError. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Waiting for the process to exit after its stdin closed, or after a kill. Default 10 s. */
  readonly exitTimeoutMs?: number;
  /** The longest line the implementation may print. Default 128 MiB (a 64 MiB region in base64 fits). */
  readonly maxLineBytes?: number;
  /** How much of its standard error is kept for messages. Default 64 KiB. */
  readonly stderrBytesMax?: number;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** The name prefix of the temporary volume directories (made under the system temp dir). Default cowmap-adapter-. */
  readonly tempPrefix?: string;
  /** Every line sent and received, and notes such as "started pid 123" and "killed" (for `conform --transcript`). */
  readonly transcript?: Transcript;
  /**
   * close() closes the volume but keeps the process for the next create (end() ends
   * it): one process serves every run that has no crash. Default false: close() ends it.
   */
  readonly keepProcess?: boolean;
  /**
   * After the first crash, keep this many processes started ahead (hello sent, no
   * volume open), so that the restart of recover() does not wait for the
   * implementation's start-up: generated sequences crash every few steps, and
   * an implementation's start-up (an interpreter, a version-manager shim) takes
   * far longer than a step, so a few start side by side. Default 2; 0: none.
   */
  readonly standbyCount?: number;
}

/** An answer as the adapter printed it (checked to be a JSON object with the request's id, a boolean ok, and an error {code, message} when not ok). */
export type RawAnswer = Readonly<Record<string, unknown>> & { readonly ok: boolean };

export interface HelloInfo {
  readonly protocol: number;
  readonly name: string;
  readonly version: string;
  readonly features: readonly string[];
}

type Response = Record<string, unknown> & { readonly ok: boolean };

/** A process started, its hello sent; the answer settles without ever rejecting. */
interface Starting {
  readonly process: AdapterProcess;
  readonly hello: Promise<{ readonly response: Response } | { readonly error: unknown }>;
}

const digestPattern = /^[0-9a-f]{64}$/;
const bitsPattern = /^[01]*$/;
const errorCodePattern = /^E_[A-Z0-9_]+$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class AdapterSut implements SystemUnderTest {
  readonly command: readonly string[];
  private readonly options: AdapterSutOptions;
  private readonly requestTimeoutMs: number;
  private readonly exitTimeoutMs: number;
  private process: AdapterProcess | null = null;
  private helloInfo: HelloInfo | null = null;
  private featureSet: ReadonlySet<Feature> = new Set<Feature>();
  private root: string | null = null;
  private geometry: Geometry | null = null;
  private nextId = 1;
  /** Processes started ahead of the next restarts (only once crashes have begun), oldest first. */
  private standbys: Starting[] = [];
  private readonly standbyCount: number;
  private readonly keepProcess: boolean;
  /** Crashes so far (kills and failpoints): the first one starts the standby. */
  private crashes = 0;
  /** The exit of the last process, for diagnostics (a failpoint exit, for one). */
  lastExit: string | null = null;

  constructor(command: readonly string[], options: AdapterSutOptions = {}) {
    if (command.length === 0 || command[0]!.length === 0) throw new RangeError('AdapterSut: the command line is empty');
    this.command = [...command];
    this.options = options;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.exitTimeoutMs = options.exitTimeoutMs ?? 10_000;
    this.standbyCount = options.standbyCount ?? 2;
    if (!Number.isSafeInteger(this.standbyCount) || this.standbyCount < 0 || this.standbyCount > standbyCountMax) {
      throw new RangeError(`AdapterSut: standbyCount must be an integer in 0..${standbyCountMax}, got ${this.standbyCount}`);
    }
    this.keepProcess = options.keepProcess ?? false;
  }

  get name(): string {
    if (this.options.name !== undefined) return this.options.name;
    if (this.helloInfo !== null) return `${this.helloInfo.name} ${this.helloInfo.version} (${this.command.join(' ')})`;
    return this.command.join(' ');
  }

  /** The features from hello (empty until the first process has answered it: call start()). */
  get features(): ReadonlySet<Feature> {
    return this.featureSet;
  }

  get hello(): HelloInfo | null {
    return this.helloInfo;
  }

  /** The volume directory of the current create (null before create and after close). */
  get volumeDir(): string | null {
    return this.root === null ? null : `${this.root}/volume`;
  }

  /** The pid of the running process, if any (its process group has the same id). */
  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Starts the implementation (if it is not running) and says hello: then `features` is known. */
  async start(): Promise<void> {
    if (this.process === null) await this.launch();
  }

  async create(geometry: Geometry): Promise<void> {
    await this.closeVolume();
    await this.start();
    this.root = makeTrackedTemporaryDir(this.options.tempPrefix);
    this.geometry = { regions: geometry.regions, regionSize: geometry.regionSize };
    const response = await this.exchange('open', { dir: this.volumeDir, create: true, regions: geometry.regions, regionSize: geometry.regionSize });
    if (!response.ok) {
      // Nothing can run on an implementation that cannot create a volume: a protocol failure, not a verdict.
      throw this.protocolError(`could not create a volume of ${geometry.regions} x ${geometry.regionSize} bytes in ${this.volumeDir}: open {create: true} answered ${this.describeError(response)}`);
    }
    this.checkPhase('open', response);
  }

  /**
   * Sends one request as given (an op and its fields; the id is added) and returns
   * the answer as printed, for checks of the protocol's own rules (malformed
   * requests, unknown ops). A well-formed error answer is returned, not thrown;
   * an answer that breaks the protocol (not JSON, another id, no ok, no error
   * code) is a ProtocolError. Starts the process if none is running.
   */
  async request(op: string, fields: Readonly<Record<string, unknown>> = {}): Promise<RawAnswer> {
    await this.start();
    return this.exchange(op, { ...fields });
  }

  async apply(op: SutOp): Promise<SutReply> {
    return this.reply(op, await this.exchange(op.type, this.opFields(op)));
  }

  async applyCrashing(op: SutOp, crash: CrashRequest): Promise<CrashingReply> {
    const needed: Feature[] = ['failpoint'];
    if (crash.mode === 'power') needed.push('power-loss');
    if (crash.mode === 'power' && crash.torn) needed.push('torn');
    const missing = needed.filter((feature) => !this.featureSet.has(feature));
    if (missing.length > 0) throw new Error(`${this.name}: a crash after io ${crash.afterIo} in ${crash.mode}${crash.torn ? '/torn' : ''} mode needs feature(s) ${missing.join(', ')}, which it does not offer`);
    const fields: Record<string, unknown> = { crashAfterIo: crash.afterIo, mode: crash.mode, seed: crash.seed };
    if (crash.torn) fields.torn = true;
    const armed = await this.exchange('failpoint', fields);
    if (!armed.ok) throw this.protocolError(`refused failpoint ${JSON.stringify(fields)} although it offers ${needed.join(', ')}: ${this.describeError(armed)}`);
    const response = await this.exchange(op.type, this.opFields(op), { crashing: true });
    if (response === null) {
      this.crashes++;
      return { crashed: true };
    }
    const reply = this.reply(op, response);
    // The op completed before the failpoint: disarm it, so that nothing fires later.
    const disarmed = await this.exchange('failpoint', { crashAfterIo: null });
    if (!disarmed.ok) throw this.protocolError(`refused to disarm its failpoint: ${this.describeError(disarmed)}`);
    return { crashed: false, reply };
  }

  async state(): Promise<SutState> {
    const response = await this.exchange('state', {});
    if (!response.ok) throw this.protocolError(`answered state with an error: ${this.describeError(response)}`);
    return this.checkState(response);
  }

  async crash(): Promise<void> {
    const process = this.process;
    if (process === null) return;
    this.process = null;
    this.crashes++;
    this.note('note', `killed pid ${process.pid} (SIGKILL to its process group)`);
    process.killGroup();
    const gone = await process.waitClosed(this.exitTimeoutMs);
    this.lastExit = process.describeExit();
    if (!gone) throw new ProtocolError(`${this.name} (pid ${process.pid}) was sent SIGKILL and its output did not close within ${this.exitTimeoutMs} ms`, process.stderr);
    await process.waitGroupGone(this.exitTimeoutMs);
  }

  async recover(): Promise<SutReply> {
    const dir = this.volumeDir;
    if (dir === null) throw new Error(`${this.name}: recover without a volume (create first)`);
    if (this.process !== null) await this.crash();
    try {
      await this.launch();
      const response = await this.exchange('open', { dir, create: false });
      if (!response.ok) return this.errorReply(response);
      this.checkPhase('open', response);
      return { ok: true, ...this.ioField(response) };
    } catch (error) {
      // An implementation that cannot come back after a crash fails the check that
      // crashed it (with its trace), rather than stopping the run as unusable.
      if (!(error instanceof ProtocolError)) throw error;
      return { ok: false, code: 'E_IO', message: `no usable answer to the reopen after the crash: ${error.message}` };
    }
  }

  /** Closes the volume and removes its directory; ends the process too unless `keepProcess`. */
  async close(): Promise<void> {
    if (!this.keepProcess) return this.end();
    try {
      await this.closeVolume();
    } finally {
      this.removeVolumeDir();
    }
  }

  /** Closes the volume, ends the process (stdin closed, exit awaited) and its standby, removes the volume directory. */
  async end(): Promise<void> {
    const process = this.process;
    await this.endStandbys();
    try {
      if (process !== null) {
        await this.closeVolume();
        this.process = null;
        process.endInput();
        const gone = await process.waitClosed(this.exitTimeoutMs);
        this.lastExit = process.describeExit();
        if (!gone) {
          process.killGroup();
          await process.waitClosed(this.exitTimeoutMs);
          throw new ProtocolError(`${this.name} (pid ${process.pid}) did not exit within ${this.exitTimeoutMs} ms after its standard input closed`, process.stderr);
        }
        await process.waitGroupGone(this.exitTimeoutMs);
      }
    } finally {
      if (this.process !== null) this.kill();
      this.removeVolumeDir();
    }
  }

  /** Kills the process at once (no request), for a caller that gives up. The volume directory stays until close(). */
  kill(): void {
    const process = this.process;
    this.process = null;
    for (const standby of this.standbys.splice(0)) standby.process.killGroup();
    if (process !== null) this.note('note', `killed pid ${process.pid} (giving up)`);
    process?.killGroup();
  }

  // ----- the protocol --------------------------------------------------------

  /** A new process of the command, its hello sent at once (answered while the caller does other work). */
  private spawn(role: string): Starting {
    const process = new AdapterProcess(this.command, {
      maxLineBytes: this.options.maxLineBytes ?? 128 * 1024 * 1024,
      stderrBytesMax: this.options.stderrBytesMax ?? 64 * 1024,
      ...(this.options.cwd === undefined ? {} : { cwd: this.options.cwd }),
      ...(this.options.env === undefined ? {} : { env: this.options.env }),
    });
    this.note('note', process.pid === undefined ? `could not start ${this.command.join(' ')}` : `started pid ${process.pid}${role}: ${this.command.join(' ')}`);
    const hello = this.exchangeOn(process, 'hello', {}, { starting: true }).then(
      (response) => ({ response: response! }),
      (error: unknown) => ({ error }),
    );
    return { process, hello };
  }

  /**
   * Makes a process the running one: the standby when there is one (started
   * earlier, so that a restart after a crash does not wait for the
   * implementation's start-up), else a new one. Once crashes have begun, a new
   * standby is started for the next one.
   */
  private async launch(): Promise<void> {
    // A standby that died before it was needed is dropped (its failure shows again if it recurs).
    let starting: Starting | undefined;
    while (starting === undefined && this.standbys.length > 0) {
      const taken = this.standbys.shift()!;
      if (taken.process.closed || taken.process.violation !== null) taken.process.killGroup();
      else starting = taken;
    }
    starting ??= this.spawn('');
    const process = starting.process;
    this.process = process;
    const answered = await starting.hello;
    if ('error' in answered) {
      this.process = null;
      throw answered.error;
    }
    const response = answered.response;
    while (this.crashes > 0 && this.standbys.length < this.standbyCount) this.standbys.push(this.spawn(' (standby, for a later restart)'));
    if (!response.ok) throw this.protocolError(`answered hello with an error: ${this.describeError(response)}`);
    if (response.protocol !== protocolVersion) {
      throw this.protocolError(`speaks adapter protocol ${JSON.stringify(response.protocol)}, not ${protocolVersion} (hello answered ${preview(Buffer.from(JSON.stringify(response)))})`);
    }
    const features = response.features;
    if (!Array.isArray(features) || !features.every((feature) => typeof feature === 'string')) {
      throw this.protocolError(`hello: features must be a list of strings, got ${JSON.stringify(features)}`);
    }
    if (typeof response.name !== 'string' || typeof response.version !== 'string') {
      throw this.protocolError(`hello: name and version must be strings, got ${JSON.stringify(response.name)} and ${JSON.stringify(response.version)}`);
    }
    this.helloInfo = { protocol: protocolVersion, name: response.name, version: response.version, features: features as string[] };
    this.featureSet = new Set(knownFeatures.filter((feature) => features.includes(feature)));
  }

  /** Closes the open volume of a running process and forgets its directory. */
  private async closeVolume(): Promise<void> {
    if (this.process !== null && this.root !== null) {
      const response = await this.exchange('close', {});
      if (!response.ok) throw this.protocolError(`close failed: ${this.describeError(response)}`);
    }
    this.removeVolumeDir();
  }

  /** A standby never opened anything: closing its input is all it needs to exit. */
  private async endStandbys(): Promise<void> {
    const standbys = this.standbys.splice(0);
    for (const standby of standbys) {
      this.note('note', `ended standby pid ${standby.process.pid}`);
      standby.process.endInput();
    }
    for (const standby of standbys) {
      if (!(await standby.process.waitClosed(this.exitTimeoutMs))) standby.process.killGroup();
    }
  }

  private removeVolumeDir(): void {
    if (this.root !== null) removeTemporaryDir(this.root);
    this.root = null;
  }

  private note(direction: 'request' | 'response' | 'note', line: string): void {
    this.options.transcript?.(direction, line);
  }

  private protocolError(message: string, process: AdapterProcess | null = this.process): ProtocolError {
    const stderr = process?.stderr ?? '';
    if (process !== null) {
      process.killGroup();
      if (this.process === process) this.process = null;
    }
    return new ProtocolError(`${this.name}: ${message}`, stderr);
  }

  private exchange(op: string, fields: Record<string, unknown>): Promise<Response>;
  private exchange(op: string, fields: Record<string, unknown>, mode: { starting?: boolean }): Promise<Response>;
  private exchange(op: string, fields: Record<string, unknown>, mode: { crashing: true }): Promise<Response | null>;
  private async exchange(op: string, fields: Record<string, unknown>, mode: { starting?: boolean; crashing?: boolean } = {}): Promise<Response | null> {
    const process = this.process;
    if (process === null) throw new Error(`${this.name}: no process is running (after a crash, recover first)`);
    return this.exchangeOn(process, op, fields, mode);
  }

  /** One request and its answer on `process` (the running one, or a standby saying hello). */
  private async exchangeOn(process: AdapterProcess, op: string, fields: Record<string, unknown>, mode: { starting?: boolean; crashing?: boolean }): Promise<Response | null> {
    if (process.violation !== null) throw this.protocolError(process.violation, process);
    if (process.closed) throw this.protocolError(`${process.describeExit()} between requests, before request ${op}`, process);
    const id = this.nextId++;
    const what = `request ${id} (${op})`;
    const line = JSON.stringify({ id, op, ...fields });
    this.note('request', line);
    process.send(line + '\n');
    const next = await process.nextLine(this.requestTimeoutMs);
    if (next.kind === 'line') this.note('response', next.bytes.toString('utf8'));
    else this.note('note', next.kind === 'closed' ? `pid ${process.pid} ${process.describeExit()}` : next.kind === 'timeout' ? `no answer within ${this.requestTimeoutMs} ms` : next.message);
    switch (next.kind) {
      case 'violation':
        throw this.protocolError(`${next.message} (while waiting for the answer to ${what})`, process);
      case 'timeout':
        throw this.protocolError(`no answer to ${what} within ${this.requestTimeoutMs} ms`, process);
      case 'closed': {
        this.lastExit = process.describeExit();
        if (mode.crashing === true) {
          if (this.process === process) this.process = null;
          process.killGroup();
          await process.waitGroupGone(this.exitTimeoutMs);
          return null;
        }
        const when = mode.starting === true ? 'at start, before answering hello' : `without answering ${what}, outside a failpoint`;
        throw this.protocolError(`${process.describeExit()} ${when}`, process);
      }
      case 'line':
        return this.parseResponse(next.bytes, id, op, process);
    }
  }

  private parseResponse(bytes: Buffer, id: number, op: string, process: AdapterProcess): Response {
    const what = `request ${id} (${op})`;
    const text = decodeUtf8(bytes);
    let value: unknown;
    try {
      if (text === null) throw new Error('not UTF-8');
      value = JSON.parse(text);
    } catch {
      throw this.protocolError(`printed a line that is not JSON where the answer to ${what} was due: ${preview(bytes)}`, process);
    }
    if (!isRecord(value)) throw this.protocolError(`answered ${what} with a line that is not a JSON object: ${preview(bytes)}`, process);
    if (value.id !== id) throw this.protocolError(`answered ${what} with id ${JSON.stringify(value.id) ?? 'missing'}: ${preview(bytes)}`, process);
    if (typeof value.ok !== 'boolean') throw this.protocolError(`answered ${what} without a boolean "ok": ${preview(bytes)}`, process);
    if (!value.ok) {
      const error = value.error;
      if (!isRecord(error) || typeof error.code !== 'string' || !errorCodePattern.test(error.code) || typeof error.message !== 'string') {
        throw this.protocolError(`answered ${what} with ok: false but without an error {code: "E_...", message}: ${preview(bytes)}`, process);
      }
    }
    if (value.io !== undefined && (!Number.isSafeInteger(value.io) || (value.io as number) < 0)) {
      throw this.protocolError(`answered ${what} with io ${JSON.stringify(value.io)}, not a count: ${preview(bytes)}`, process);
    }
    if (value.io === undefined && this.featureSet.has('failpoint')) {
      throw this.protocolError(`answered ${what} without io, which a SUT offering failpoint must report: ${preview(bytes)}`, process);
    }
    return value as Response;
  }

  private opFields(op: SutOp): Record<string, unknown> {
    switch (op.type) {
      case 'write':
        return { region: op.region, data: Buffer.from(op.data.buffer, op.data.byteOffset, op.data.byteLength).toString('base64') };
      case 'read':
        return { region: op.region, volume: op.volume };
      case 'transfer':
        return { region: op.region };
      case 'startCycle':
      case 'completeCycle':
        return {};
    }
  }

  private ioField(response: Response): { io?: number } {
    return typeof response.io === 'number' ? { io: response.io } : {};
  }

  private errorReply(response: Response): { readonly ok: false; readonly code: string; readonly message: string; readonly io?: number } {
    const error = response.error as { code: string; message: string };
    return { ok: false, code: error.code, message: error.message, ...this.ioField(response) };
  }

  private describeError(response: Response): string {
    const error = response.error as { code: string; message: string } | undefined;
    return error === undefined ? 'ok' : `${error.code}: ${error.message}`;
  }

  private reply(op: SutOp, response: Response): SutReply {
    if (!response.ok) return this.errorReply(response);
    if (op.type !== 'read') return { ok: true, ...this.ioField(response) };
    const data = typeof response.data === 'string' ? decodeBase64(response.data) : null;
    if (data === null) throw this.protocolError(`answered read(region ${op.region}, ${op.volume}) without base64 data`);
    return { ok: true, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), ...this.ioField(response) };
  }

  private checkPhase(op: string, response: Response): void {
    if (response.phase !== 'idle' && response.phase !== 'replicating') {
      throw this.protocolError(`answered ${op} with phase ${JSON.stringify(response.phase)}, not "idle" or "replicating"`);
    }
  }

  private checkState(response: Response): SutState {
    this.checkPhase('state', response);
    const regions = this.geometry?.regions;
    const problems: string[] = [];
    const bits = (field: string): string => {
      const value = response[field];
      if (typeof value !== 'string' || !bitsPattern.test(value) || (regions !== undefined && value.length !== regions)) {
        problems.push(`${field} must be a string of ${regions ?? 'n'} bits, got ${JSON.stringify(value)?.slice(0, 80)}`);
        return '';
      }
      return value;
    };
    const digests = (field: string, nullable: boolean): (string | null)[] => {
      const value = response[field];
      const ok = Array.isArray(value) && (regions === undefined || value.length === regions) && value.every((entry) => (typeof entry === 'string' && digestPattern.test(entry)) || (nullable && entry === null));
      if (!ok) {
        problems.push(`${field} must be a list of ${regions ?? 'n'} lower-case SHA-256 digests${nullable ? ' or nulls' : ''}, got ${JSON.stringify(value)?.slice(0, 80)}`);
        return [];
      }
      return value as (string | null)[];
    };
    const state: SutState = {
      phase: response.phase as SutState['phase'],
      current: bits('current'),
      next: bits('next'),
      cow: bits('cow'),
      primary: digests('primary', false) as string[],
      secondary: digests('secondary', false) as string[],
      cowData: digests('cowData', true),
    };
    if (problems.length > 0) throw this.protocolError(`answered state with a malformed state: ${problems.join('; ')}`);
    return state;
  }
}
