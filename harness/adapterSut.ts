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
//   recover()                a new process with the same command: hello, open {create: false};
//                            once crashes began, a few processes are kept started ahead
//                            (standbys), so that a restart does not wait for start-up;
//                            no usable answer is a failing reply (the level fails with a
//                            trace), not a ProtocolError
//   close()                  close, remove the temp dir; unless `keepProcess`, also end
//                            stdin and wait for the exit (end() does that in any case)
//   request(op, fields)      any request as given, for the protocol's own rules
//                            (harness/protocolChecks.ts): the raw answer
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

import type { Geometry } from '../model/types.ts';
import { AdapterProcess, preview, ProtocolError } from './adapter/adapterProcess.ts';
import { decodeBase64, decodeUtf8 } from './adapter/lines.ts';
import {
  makeTrackedTemporaryDir,
  removeTemporaryDir,
  removeTemporaryDirSoon,
  temporaryDirRemovalsSettled,
} from './adapter/temporaryDirs.ts';
import type { CrashingReply, CrashRequest, Feature, SutOp, SutReply, SutState, SystemUnderTest } from './sut.ts';

// The pieces live in harness/adapter/; callers keep importing them from here.
export { ProtocolError } from './adapter/adapterProcess.ts';
export { decodeBase64, decodeUtf8, LineSplitter } from './adapter/lines.ts';
export type { LineEvent } from './adapter/lines.ts';
export {
  makeTrackedTemporaryDir,
  removeTemporaryDir,
  removeTemporaryDirs,
  temporaryDirRemovalsSettled,
} from './adapter/temporaryDirs.ts';

export const protocolVersion = 1;

/** Where every line sent and received goes, with notes on the process's life ("started pid 123", "killed"). */
export type Transcript = (direction: 'request' | 'response' | 'note', line: string) => void;

/** The most processes kept started ahead of restarts. */
export const standbyCountMax = 8;

const knownFeatures: readonly Feature[] = ['failpoint', 'power-loss', 'torn'];

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
  /**
   * Where the temporary volume directories are made (default: the system temp dir,
   * which TMPDIR sets). A RAM-backed one (/dev/shm) makes an implementation's
   * fsyncs nearly free, and conformance never relies on them: process crashes lose
   * nothing that reached the OS, power losses are the adapter's own simulation.
   * Not the default: an implementation using O_DIRECT cannot open files there.
   */
  readonly tempDir?: string;
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
   * far longer than a step, so a few start side by side. Default 3; 0: none.
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
    this.standbyCount = options.standbyCount ?? 3;
    if (!Number.isSafeInteger(this.standbyCount) || this.standbyCount < 0 || this.standbyCount > standbyCountMax) {
      throw new RangeError(
        `AdapterSut: standbyCount must be an integer in 0..${standbyCountMax}, got ${this.standbyCount}`,
      );
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
    this.root = makeTrackedTemporaryDir(this.options.tempPrefix, this.options.tempDir);
    this.geometry = { regions: geometry.regions, regionSize: geometry.regionSize };
    const response = await this.exchange('open', {
      dir: this.volumeDir,
      create: true,
      regions: geometry.regions,
      regionSize: geometry.regionSize,
    });
    if (!response.ok) {
      // Nothing can run on an implementation that cannot create a volume: a protocol failure, not a verdict.
      throw this.protocolError(
        `could not create a volume of ${geometry.regions} x ${geometry.regionSize} bytes in ${this.volumeDir}: open {create: true} answered ${this.describeError(response)}`,
      );
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
    if (missing.length > 0)
      throw new Error(
        `${this.name}: a crash after io ${crash.afterIo} in ${crash.mode}${crash.torn ? '/torn' : ''} mode needs feature(s) ${missing.join(', ')}, which it does not offer`,
      );
    const fields: Record<string, unknown> = { crashAfterIo: crash.afterIo, mode: crash.mode, seed: crash.seed };
    if (crash.torn) fields.torn = true;
    const armed = await this.exchange('failpoint', fields);
    if (!armed.ok)
      throw this.protocolError(
        `refused failpoint ${JSON.stringify(fields)} although it offers ${needed.join(', ')}: ${this.describeError(armed)}`,
      );
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
    if (!gone)
      throw new ProtocolError(
        `${this.name} (pid ${process.pid}) was sent SIGKILL and its output did not close within ${this.exitTimeoutMs} ms`,
        process.stderr,
      );
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
          throw new ProtocolError(
            `${this.name} (pid ${process.pid}) did not exit within ${this.exitTimeoutMs} ms after its standard input closed`,
            process.stderr,
          );
        }
        await process.waitGroupGone(this.exitTimeoutMs);
      }
    } finally {
      if (this.process !== null) this.kill();
      this.removeVolumeDir();
      await temporaryDirRemovalsSettled();
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
    this.note(
      'note',
      process.pid === undefined
        ? `could not start ${this.command.join(' ')}`
        : `started pid ${process.pid}${role}: ${this.command.join(' ')}`,
    );
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
    while (this.crashes > 0 && this.standbys.length < this.standbyCount)
      this.standbys.push(this.spawn(' (standby, for a later restart)'));
    if (!response.ok) throw this.protocolError(`answered hello with an error: ${this.describeError(response)}`);
    if (response.protocol !== protocolVersion) {
      throw this.protocolError(
        `speaks adapter protocol ${JSON.stringify(response.protocol)}, not ${protocolVersion} (hello answered ${preview(Buffer.from(JSON.stringify(response)))})`,
      );
    }
    const features = response.features;
    if (!Array.isArray(features) || !features.every((feature) => typeof feature === 'string')) {
      throw this.protocolError(`hello: features must be a list of strings, got ${JSON.stringify(features)}`);
    }
    if (typeof response.name !== 'string' || typeof response.version !== 'string') {
      throw this.protocolError(
        `hello: name and version must be strings, got ${JSON.stringify(response.name)} and ${JSON.stringify(response.version)}`,
      );
    }
    this.helloInfo = {
      protocol: protocolVersion,
      name: response.name,
      version: response.version,
      features: features as string[],
    };
    this.featureSet = new Set(knownFeatures.filter((feature) => features.includes(feature)));
  }

  /** Closes the open volume of a running process and forgets its directory. */
  private async closeVolume(): Promise<void> {
    if (this.process !== null && this.root !== null) {
      const response = await this.exchange('close', {});
      if (!response.ok) throw this.protocolError(`close failed: ${this.describeError(response)}`);
      // Closed by the adapter: its files can go while the next run starts.
      removeTemporaryDirSoon(this.root);
      this.root = null;
      return;
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
  private async exchange(
    op: string,
    fields: Record<string, unknown>,
    mode: { starting?: boolean; crashing?: boolean } = {},
  ): Promise<Response | null> {
    const process = this.process;
    if (process === null) throw new Error(`${this.name}: no process is running (after a crash, recover first)`);
    return this.exchangeOn(process, op, fields, mode);
  }

  /** One request and its answer on `process` (the running one, or a standby saying hello). */
  private async exchangeOn(
    process: AdapterProcess,
    op: string,
    fields: Record<string, unknown>,
    mode: { starting?: boolean; crashing?: boolean },
  ): Promise<Response | null> {
    if (process.violation !== null) throw this.protocolError(process.violation, process);
    if (process.closed)
      throw this.protocolError(`${process.describeExit()} between requests, before request ${op}`, process);
    const id = this.nextId++;
    const what = `request ${id} (${op})`;
    const line = JSON.stringify({ id, op, ...fields });
    this.note('request', line);
    process.send(`${line}\n`);
    const next = await process.nextLine(this.requestTimeoutMs);
    if (next.kind === 'line') this.note('response', next.bytes.toString('utf8'));
    else
      this.note(
        'note',
        next.kind === 'closed'
          ? `pid ${process.pid} ${process.describeExit()}`
          : next.kind === 'timeout'
            ? `no answer within ${this.requestTimeoutMs} ms`
            : next.message,
      );
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
        const when =
          mode.starting === true
            ? 'at start, before answering hello'
            : `without answering ${what}, outside a failpoint`;
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
      throw this.protocolError(
        `printed a line that is not JSON where the answer to ${what} was due: ${preview(bytes)}`,
        process,
      );
    }
    if (!isRecord(value))
      throw this.protocolError(`answered ${what} with a line that is not a JSON object: ${preview(bytes)}`, process);
    if (value.id !== id)
      throw this.protocolError(
        `answered ${what} with id ${JSON.stringify(value.id) ?? 'missing'}: ${preview(bytes)}`,
        process,
      );
    if (typeof value.ok !== 'boolean')
      throw this.protocolError(`answered ${what} without a boolean "ok": ${preview(bytes)}`, process);
    if (!value.ok) {
      const error = value.error;
      if (
        !isRecord(error) ||
        typeof error.code !== 'string' ||
        !errorCodePattern.test(error.code) ||
        typeof error.message !== 'string'
      ) {
        throw this.protocolError(
          `answered ${what} with ok: false but without an error {code: "E_...", message}: ${preview(bytes)}`,
          process,
        );
      }
    }
    if (value.io !== undefined && (!Number.isSafeInteger(value.io) || (value.io as number) < 0)) {
      throw this.protocolError(
        `answered ${what} with io ${JSON.stringify(value.io)}, not a count: ${preview(bytes)}`,
        process,
      );
    }
    if (value.io === undefined && this.featureSet.has('failpoint')) {
      throw this.protocolError(
        `answered ${what} without io, which a SUT offering failpoint must report: ${preview(bytes)}`,
        process,
      );
    }
    return value as Response;
  }

  private opFields(op: SutOp): Record<string, unknown> {
    switch (op.type) {
      case 'write':
        return {
          region: op.region,
          data: Buffer.from(op.data.buffer, op.data.byteOffset, op.data.byteLength).toString('base64'),
        };
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

  private errorReply(response: Response): {
    readonly ok: false;
    readonly code: string;
    readonly message: string;
    readonly io?: number;
  } {
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
      throw this.protocolError(
        `answered ${op} with phase ${JSON.stringify(response.phase)}, not "idle" or "replicating"`,
      );
    }
  }

  private checkState(response: Response): SutState {
    this.checkPhase('state', response);
    const regions = this.geometry?.regions;
    const problems: string[] = [];
    const bits = (field: string): string => {
      const value = response[field];
      if (
        typeof value !== 'string' ||
        !bitsPattern.test(value) ||
        (regions !== undefined && value.length !== regions)
      ) {
        problems.push(
          `${field} must be a string of ${regions ?? 'n'} bits, got ${JSON.stringify(value)?.slice(0, 80)}`,
        );
        return '';
      }
      return value;
    };
    const digests = (field: string, nullable: boolean): (string | null)[] => {
      const value = response[field];
      const ok =
        Array.isArray(value) &&
        (regions === undefined || value.length === regions) &&
        value.every(
          (entry) => (typeof entry === 'string' && digestPattern.test(entry)) || (nullable && entry === null),
        );
      if (!ok) {
        problems.push(
          `${field} must be a list of ${regions ?? 'n'} lower-case SHA-256 digests${nullable ? ' or nulls' : ''}, got ${JSON.stringify(value)?.slice(0, 80)}`,
        );
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
