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
//                            (standbys.ts), so that a restart does not wait for start-up;
//                            no usable answer is a failing reply (the level fails with a
//                            trace), not a ProtocolError
//   close()                  close, remove the temp dir; unless `keepProcess`, also end
//                            stdin and wait for the exit (end() does that in any case)
//   request(op, fields)      any request as given, for the protocol's own rules
//                            (harness/protocolChecks.ts): the raw answer
//
// Whatever the implementation does wrong at the protocol level is a ProtocolError
// (answers.ts, requests.ts say what) with a message that says what and ends with
// the tail of its standard error. After a ProtocolError the process is killed;
// close() still cleans up.
//
// The child runs in its own process group (adapterProcess.ts), so that a kill
// reaches what a wrapper such as npx or a shell script started under it.

import type { Geometry } from '../../model/types.ts';
import type {
  CrashingReply,
  CrashRequest,
  CreateChoice,
  Feature,
  SutOp,
  SutReply,
  SutState,
  SystemUnderTest,
} from '../sut/systemUnderTest.ts';
import { AdapterProcess } from './adapterProcess.ts';
import { type AdapterSutLimits, type AdapterSutOptions, adapterSutLimits } from './adapterSutOptions.ts';
import {
  type Answer,
  checkPhase,
  describeError,
  errorReplyOf,
  type HelloInfo,
  okReplyOf,
  type RawAnswer,
  readHello,
  readState,
  replyOf,
} from './answers.ts';
import type { JsonObject } from './protocol.ts';
import { ProtocolError } from './protocolError.ts';
import { opFields, Requests } from './requests.ts';
import { type Starting, Standbys } from './standbys.ts';
import {
  makeTrackedTemporaryDir,
  removeTemporaryDir,
  removeTemporaryDirSoon,
  temporaryDirRemovalsSettled,
} from './temporaryDirs.ts';

export class AdapterSut implements SystemUnderTest {
  readonly command: readonly string[];
  private readonly options: AdapterSutOptions;
  private readonly limits: AdapterSutLimits;
  private readonly requests: Requests;
  private process: AdapterProcess | null = null;
  private helloInfo: HelloInfo | null = null;
  private featureSet: ReadonlySet<Feature> = new Set<Feature>();
  private root: string | null = null;
  private geometry: Geometry | null = null;
  /** Processes started ahead of the next restarts (only once crashes have begun). */
  private readonly standbys: Standbys;
  private readonly keepProcess: boolean;
  /** Crashes so far (kills and failpoints): the first one starts the standbys. */
  private crashes = 0;

  constructor(command: readonly string[], options: AdapterSutOptions = {}) {
    if (command.length === 0 || command[0]!.length === 0) throw new RangeError('AdapterSut: the command line is empty');
    this.command = [...command];
    this.options = options;
    this.limits = adapterSutLimits(options);
    this.keepProcess = options.keepProcess ?? false;
    this.requests = new Requests({
      requestTimeoutMs: this.limits.requestTimeoutMs,
      exitTimeoutMs: this.limits.exitTimeoutMs,
      transcript: options.transcript,
      ioRequired: () => this.featureSet.has('failpoint'),
      fail: (message, process) => {
        throw this.protocolError(message, process);
      },
    });
    this.standbys = new Standbys(this.limits.standbyCount, () => this.spawn(' (standby, for a later restart)'));
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

  /** The exit of the last process, for diagnostics (a failpoint exit, for one). */
  get lastExit(): string | null {
    return this.requests.lastExit;
  }

  /** Starts the implementation (if it is not running) and says hello: then `features` is known. */
  async start(): Promise<void> {
    if (this.process === null) await this.launch();
  }

  async create(geometry: Geometry, choice: CreateChoice = {}): Promise<void> {
    await this.closeVolume();
    await this.start();
    this.root = makeTrackedTemporaryDir(this.options.tempPrefix, this.options.tempDir);
    this.geometry = { regions: geometry.regions, regionSize: geometry.regionSize };
    const answer = await this.exchange('open', {
      dir: this.volumeDir,
      create: true,
      regions: geometry.regions,
      regionSize: geometry.regionSize,
      // Asked only of an adapter that offers the feature (docs/adapter.md, `open`).
      ...(choice.consistent === true ? { consistent: true } : {}),
    });
    if (!answer.ok) {
      // Nothing can run on an implementation that cannot create a volume: a protocol failure, not a verdict.
      throw this.protocolError(
        `could not create a volume of ${geometry.regions} x ${geometry.regionSize} bytes in ${this.volumeDir}: ` +
          `open {create: true} answered ${describeError(answer)}`,
      );
    }
    checkPhase('open', answer, this.fail);
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
    return replyOf(op, await this.exchange(op.type, opFields(op)), this.fail);
  }

  async applyCrashing(op: SutOp, crash: CrashRequest): Promise<CrashingReply> {
    await this.armFailpoint(crash);
    const process = this.running();
    const answer = await this.requests.exchange(process, op.type, opFields(op), { crashing: true });
    if (answer === null) {
      if (this.process === process) this.process = null;
      this.crashes++;
      return { crashed: true };
    }
    const reply = replyOf(op, answer, this.fail);
    // The op completed before the failpoint: disarm it, so that nothing fires later.
    const disarmed = await this.exchange('failpoint', { crashAfterIo: null });
    if (!disarmed.ok) throw this.protocolError(`refused to disarm its failpoint: ${describeError(disarmed)}`);
    return { crashed: false, reply };
  }

  async state(): Promise<SutState> {
    return readState(await this.exchange('state', {}), this.geometry?.regions, this.fail);
  }

  async crash(): Promise<void> {
    const process = this.process;
    if (process === null) return;
    this.process = null;
    this.crashes++;
    this.requests.note('note', `killed pid ${process.pid} (SIGKILL to its process group)`);
    process.killGroup();
    const gone = await process.waitClosed(this.limits.exitTimeoutMs);
    this.requests.ended(process);
    if (!gone)
      throw new ProtocolError(
        `${this.name} (pid ${process.pid}) was sent SIGKILL and its output did not close within ${this.limits.exitTimeoutMs} ms`,
        process.stderr,
      );
    await process.waitGroupGone(this.limits.exitTimeoutMs);
  }

  async recover(): Promise<SutReply> {
    const dir = this.volumeDir;
    if (dir === null) throw new Error(`${this.name}: recover without a volume (create first)`);
    if (this.process !== null) await this.crash();
    try {
      await this.launch();
      const answer = await this.exchange('open', { dir, create: false });
      if (!answer.ok) return errorReplyOf(answer);
      checkPhase('open', answer, this.fail);
      return okReplyOf(answer);
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

  /** Closes the volume, ends the process (stdin closed, exit awaited) and its standbys, removes the volume directory. */
  async end(): Promise<void> {
    const process = this.process;
    await this.standbys.end(this.limits.exitTimeoutMs, (line) => this.requests.note('note', line));
    try {
      if (process !== null) {
        await this.closeVolume();
        this.process = null;
        await this.awaitExit(process);
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
    this.standbys.kill();
    if (process !== null) this.requests.note('note', `killed pid ${process.pid} (giving up)`);
    process?.killGroup();
  }

  // ----- the process ---------------------------------------------------------

  /** Closes the input of `process` and waits for its exit and its group's; kills it if it does not exit. */
  private async awaitExit(process: AdapterProcess): Promise<void> {
    process.endInput();
    const gone = await process.waitClosed(this.limits.exitTimeoutMs);
    this.requests.ended(process);
    if (!gone) {
      process.killGroup();
      await process.waitClosed(this.limits.exitTimeoutMs);
      throw new ProtocolError(
        `${this.name} (pid ${process.pid}) did not exit within ${this.limits.exitTimeoutMs} ms after its standard input closed`,
        process.stderr,
      );
    }
    await process.waitGroupGone(this.limits.exitTimeoutMs);
  }

  /** A new process of the command, its hello sent at once (answered while the caller does other work). */
  private spawn(role: string): Starting {
    const process = new AdapterProcess(this.command, {
      maxLineBytes: this.limits.maxLineBytes,
      stderrBytesMax: this.limits.stderrBytesMax,
      ...(this.options.cwd === undefined ? {} : { cwd: this.options.cwd }),
      ...(this.options.env === undefined ? {} : { env: this.options.env }),
    });
    this.requests.note(
      'note',
      process.pid === undefined
        ? `could not start ${this.command.join(' ')}`
        : `started pid ${process.pid}${role}: ${this.command.join(' ')}`,
    );
    const hello = this.requests.exchange(process, 'hello', {}, { starting: true }).then(
      (answer) => ({ answer: answer! }),
      (error: unknown) => ({ error }),
    );
    return { process, hello };
  }

  /**
   * Makes a process the running one: a standby when there is one (started
   * earlier, so that a restart after a crash does not wait for the
   * implementation's start-up), else a new one. Once crashes have begun, new
   * standbys are started for the next ones.
   */
  private async launch(): Promise<void> {
    const starting = this.standbys.take() ?? this.spawn('');
    this.process = starting.process;
    const answered = await starting.hello;
    if ('error' in answered) {
      this.process = null;
      throw answered.error;
    }
    if (this.crashes > 0) this.standbys.fill();
    const hello = readHello(answered.answer, this.fail);
    this.helloInfo = hello.info;
    this.featureSet = hello.features;
  }

  /** Sends the failpoint a crash asks for, after checking that the implementation offers what it needs. */
  private async armFailpoint(crash: CrashRequest): Promise<void> {
    const needed: Feature[] = ['failpoint'];
    if (crash.mode === 'power') needed.push('power-loss');
    if (crash.mode === 'power' && crash.torn) needed.push('torn');
    const missing = needed.filter((feature) => !this.featureSet.has(feature));
    if (missing.length > 0)
      throw new Error(
        `${this.name}: a crash after io ${crash.afterIo} in ${crash.mode}${crash.torn ? '/torn' : ''} mode ` +
          `needs feature(s) ${missing.join(', ')}, which it does not offer`,
      );
    const fields: JsonObject = { crashAfterIo: crash.afterIo, mode: crash.mode, seed: crash.seed };
    if (crash.torn) fields.torn = true;
    const armed = await this.exchange('failpoint', fields);
    if (!armed.ok)
      throw this.protocolError(
        `refused failpoint ${JSON.stringify(fields)} although it offers ${needed.join(', ')}: ${describeError(armed)}`,
      );
  }

  /** Closes the open volume of a running process and forgets its directory. */
  private async closeVolume(): Promise<void> {
    if (this.process !== null && this.root !== null) {
      const answer = await this.exchange('close', {});
      if (!answer.ok) throw this.protocolError(`close failed: ${describeError(answer)}`);
      // Closed by the adapter: its files can go while the next run starts.
      removeTemporaryDirSoon(this.root);
      this.root = null;
      return;
    }
    this.removeVolumeDir();
  }

  private removeVolumeDir(): void {
    if (this.root !== null) removeTemporaryDir(this.root);
    this.root = null;
  }

  // ----- the protocol --------------------------------------------------------

  /** Kills the group of `process` (the running one by default), forgets it, and makes the error. */
  private protocolError(message: string, process: AdapterProcess | null = this.process): ProtocolError {
    const stderr = process?.stderr ?? '';
    if (process !== null) {
      process.killGroup();
      if (this.process === process) this.process = null;
    }
    return new ProtocolError(`${this.name}: ${message}`, stderr);
  }

  /** Reports a malformed answer of the running process. */
  private readonly fail = (message: string): never => {
    throw this.protocolError(message);
  };

  private running(): AdapterProcess {
    if (this.process === null) throw new Error(`${this.name}: no process is running (after a crash, recover first)`);
    return this.process;
  }

  /** One request and its answer on the running process. */
  private async exchange(op: string, fields: JsonObject): Promise<Answer> {
    // Outside crashing mode an exit is a failure, never a null answer.
    return (await this.requests.exchange(this.running(), op, fields, {}))!;
  }
}
