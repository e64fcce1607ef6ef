// The reference implementation (or a named mutant of it) served over the
// conformance adapter protocol v1 (docs/adapter.md): `cowmap adapter [--mutant NAME]`.
// One JSON request a line on stdin, one JSON response a line on stdout, strictly
// in order; logs go to stderr only; the process exits with 0 when stdin closes.
//
// The volume runs on ONE CrashStorage over node:fs for the life of the process,
// so that a failpoint armed by `failpoint` counts durable I/O calls "from now"
// across requests (an `open` with create included). When the crash fires (the
// crash layer throws SimulatedCrash at the call after the k-th, or crashIfDue()
// at the end of the request that made the k-th), the crash layer has already
// rewritten the files to the post-crash state (power mode: unsynced writes kept
// or dropped by the seed, torn: per sector), and the process exits at once with
// `failpointExitCode` (86) without answering that request.
//
// Choices where docs/adapter.md and docs/protocol.md are silent, the same as the Python example
// (examples/python-adapter/README.md):
//   - With no volume open, write, read, startCycle, transfer, completeCycle and
//     state answer E_PHASE, after their fields were checked (E_BAD_REQUEST first).
//     hello, failpoint, open and close work without a volume; close of nothing is ok.
//   - A request that cannot be read (not UTF-8, not JSON, not an object, no integer
//     id) is answered E_BAD_REQUEST with "id": null; an unknown op, a missing or
//     ill-typed field, data that is not base64, a volume other than primary or
//     secondary: E_BAD_REQUEST with the id. Blank lines get no answer. Unknown
//     fields are ignored. A line over `maxLineBytes` is skipped unread and answered
//     E_BAD_REQUEST with id null.
//   - open while a volume is open closes it first. open with create answers
//     E_EXISTS when the path exists and is not a directory.
//   - A storage failure answers E_IO and poisons the volume until the next open
//     (impl/replicatedVolume.ts). Anything unexpected thrown while serving a
//     request (a bug, a mutant's broken assertion) answers E_IO "internal error",
//     logs the stack, and drops the volume: nothing a client sends crashes the server.

import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { CowmapError, isCowmapError } from '../impl/errors.ts';
import { NodeStorage } from '../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { decodeBase64, decodeUtf8, LineSplitter, protocolVersion, type LineEvent } from './adapterSut.ts';
import { CrashStorage, isSimulatedCrash, SimulatedCrash } from './crashStorage.ts';
import type { VolumeClass } from './types.ts';

export type { VolumeClass } from './types.ts';

/** The exit status at a failpoint (the same as the Python example's). */
export const failpointExitCode = 86;
/** The features this server offers in hello. */
export const serverFeatures = ['failpoint', 'power-loss', 'torn'] as const;
/** Default bound of a request line: a write of the largest region (64 MiB) in base64 fits. */
export const requestLineBytesMax = 96 * 1024 * 1024;

export interface AdapterServerOptions {
  /** The volume class: ReplicatedVolume (default) or a mutant's. */
  readonly volumeClass?: VolumeClass;
  /** The name in hello. */
  readonly name?: string;
  readonly version?: string;
  /** Where the server's few log lines go (default: stderr). */
  readonly log?: (line: string) => void;
}

type Fields = Record<string, unknown>;

/** What one request line gives: a response to print, or a crash (print nothing, exit). */
export type HandleResult =
  | { readonly kind: 'response'; readonly response: Fields }
  | { readonly kind: 'crash'; readonly crash: SimulatedCrash };

type Handler = (request: Fields) => Fields | void;

function packageVersion(): string {
  try {
    const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
    const version = (JSON.parse(text) as { version?: unknown }).version;
    return typeof version === 'string' ? version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function isRecord(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function badRequest(message: string): CowmapError {
  return new CowmapError('E_BAD_REQUEST', message);
}

function show(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

function field(request: Fields, name: string, op: string): unknown {
  if (!Object.hasOwn(request, name)) throw badRequest(`${op}: the field '${name}' is missing`);
  return request[name];
}

function integerField(request: Fields, name: string, op: string): number {
  const value = field(request, name, op);
  if (typeof value !== 'number' || !Number.isInteger(value))
    throw badRequest(`${op}: the field '${name}' must be an integer, got ${show(value)}`);
  return value;
}

function stringField(request: Fields, name: string, op: string): string {
  const value = field(request, name, op);
  if (typeof value !== 'string') throw badRequest(`${op}: the field '${name}' must be a string, got ${show(value)}`);
  return value;
}

function booleanField(request: Fields, name: string, op: string): boolean {
  const value = field(request, name, op);
  if (typeof value !== 'boolean')
    throw badRequest(`${op}: the field '${name}' must be true or false, got ${show(value)}`);
  return value;
}

function dataField(request: Fields, op: string): Uint8Array {
  const data = decodeBase64(stringField(request, 'data', op));
  if (data === null) throw badRequest(`${op}: the field 'data' is not base64`);
  return data;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export class AdapterServer {
  readonly name: string;
  readonly version: string;
  private readonly volumeClass: VolumeClass;
  private readonly log: (line: string) => void;
  /** One storage for the process: a failpoint counts across requests and volumes. */
  readonly storage = new CrashStorage(new NodeStorage());
  private volume: ReplicatedVolume | null = null;
  private readonly handlers: ReadonlyMap<string, Handler>;

  constructor(options: AdapterServerOptions = {}) {
    this.volumeClass = options.volumeClass ?? ReplicatedVolume;
    this.name = options.name ?? 'cowmap-reference';
    this.version = options.version ?? packageVersion();
    this.log = options.log ?? ((line) => process.stderr.write(`cowmap adapter: ${line}\n`));
    this.handlers = new Map<string, Handler>([
      ['hello', () => this.hello()],
      ['open', (request) => this.open(request)],
      ['write', (request) => this.write(request)],
      ['read', (request) => this.read(request)],
      ['startCycle', () => this.openVolume('startCycle()').startCycle()],
      ['transfer', (request) => this.transfer(request)],
      ['completeCycle', () => this.openVolume('completeCycle()').completeCycle()],
      ['state', () => ({ ...this.openVolume('state()').state() })],
      ['failpoint', (request) => this.failpoint(request)],
      ['close', () => this.closeVolume()],
    ]);
  }

  /** Serves one request line (without its newline). Null for a blank line, which gets no answer. */
  handleLine(line: Uint8Array): HandleResult | null {
    const text = decodeUtf8(line);
    if (text !== null && text.trim() === '') return null;
    let id: number | null = null;
    let op = 'request';
    let response: Fields;
    try {
      if (text === null) throw badRequest('the request is not UTF-8');
      let request: unknown;
      try {
        request = JSON.parse(text);
      } catch {
        throw badRequest('the request is not a JSON object on one line');
      }
      if (!isRecord(request)) throw badRequest('the request is not a JSON object');
      if (!Number.isSafeInteger(request.id))
        throw badRequest(`the request has no integer 'id' (got ${show(request.id)})`);
      id = request.id as number;
      const handler = typeof request.op === 'string' ? this.handlers.get(request.op) : undefined;
      if (handler === undefined) throw badRequest(`unknown op ${show(request.op)}`);
      op = request.op as string;
      const fields = handler(request) ?? {};
      response = { id, ok: true, ...fields };
    } catch (error) {
      if (isSimulatedCrash(error)) return { kind: 'crash', crash: error };
      if (this.storage.isCrashed) return this.crashed();
      if (isCowmapError(error)) {
        response = this.error(id, error.code, error.message);
      } else {
        // A bug below, or a mutant's broken assertion: answer, log, drop the volume.
        this.log(
          `internal error in ${op} (request ${id}): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        );
        try {
          this.dropVolume();
        } catch (closing) {
          if (isSimulatedCrash(closing)) return { kind: 'crash', crash: closing };
          throw closing;
        }
        response = this.error(
          id,
          'E_IO',
          `${op}: internal error: ${error instanceof Error ? error.message : String(error)}; the volume was closed, open it again`,
        );
      }
    }
    // A crash due right after the request's last durable call comes before its answer.
    try {
      this.storage.crashIfDue();
    } catch (error) {
      if (isSimulatedCrash(error)) return { kind: 'crash', crash: error };
      throw error;
    }
    return { kind: 'response', response: { ...response, io: this.storage.takeIoCount() } };
  }

  /** The answer to a line longer than the bound (skipped unread). */
  oversized(length: number, maxLineBytes: number): HandleResult {
    this.log(`a request line of ${length} bytes was skipped (longer than ${maxLineBytes})`);
    return {
      kind: 'response',
      response: {
        ...this.error(null, 'E_BAD_REQUEST', `the request line exceeds ${maxLineBytes} bytes`),
        io: this.storage.takeIoCount(),
      },
    };
  }

  /** Closes the volume, if one is open (at the end of input). */
  shutdown(): void {
    if (this.storage.isCrashed) return;
    try {
      this.closeVolume();
    } catch (error) {
      this.log(`closing the volume at the end failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** The storage crashed under a call that swallowed or replaced the SimulatedCrash. */
  private crashed(): HandleResult {
    const report = this.storage.lastCrash;
    return {
      kind: 'crash',
      crash: new SimulatedCrash(
        'the storage crashed',
        report?.mode ?? 'process',
        report?.ioCount ?? this.storage.ioCount,
        report,
      ),
    };
  }

  private error(id: number | null, code: string, message: string): Fields {
    return { id, ok: false, error: { code, message } };
  }

  private openVolume(where: string): ReplicatedVolume {
    if (this.volume === null) throw new CowmapError('E_PHASE', `${where} while no volume is open: send open first`);
    return this.volume;
  }

  private closeVolume(): Fields {
    const volume = this.volume;
    this.volume = null;
    volume?.close();
    return {};
  }

  /** After an internal error: close what can be closed, ignore the rest. */
  private dropVolume(): void {
    try {
      this.closeVolume();
    } catch (error) {
      if (isSimulatedCrash(error)) throw error;
      this.log(
        `closing the volume after an internal error failed too: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    this.volume = null;
  }

  // ----- the ops --------------------------------------------------------------

  private hello(): Fields {
    return { protocol: protocolVersion, name: this.name, version: this.version, features: [...serverFeatures] };
  }

  private open(request: Fields): Fields {
    const dir = stringField(request, 'dir', 'open');
    if (dir.length === 0 || dir.includes('\0'))
      throw badRequest(`open: the field 'dir' must be a path, got ${show(dir)}`);
    const create = booleanField(request, 'create', 'open');
    const geometry = create
      ? { regions: integerField(request, 'regions', 'open'), regionSize: integerField(request, 'regionSize', 'open') }
      : null;
    // One volume at a time: the open one is closed first (so that reopening the
    // same directory in this process does not find it locked by ourselves).
    this.closeVolume();
    if (geometry !== null) {
      if (existsSync(dir) && !statSync(dir).isDirectory())
        throw new CowmapError('E_EXISTS', `create: ${dir} exists and is not a directory`);
      this.volume = this.volumeClass.create(this.storage, dir, geometry);
    } else {
      this.volume = this.volumeClass.open(this.storage, dir);
    }
    return { phase: this.volume.phase };
  }

  private write(request: Fields): Fields {
    const region = integerField(request, 'region', 'write');
    const data = dataField(request, 'write');
    this.openVolume(`write(region ${region})`).writeRegion(region, data);
    return {};
  }

  private read(request: Fields): Fields {
    const region = integerField(request, 'region', 'read');
    const volume = stringField(request, 'volume', 'read');
    if (volume !== 'primary' && volume !== 'secondary')
      throw badRequest(`read: the field 'volume' must be "primary" or "secondary", got ${show(volume)}`);
    return { data: base64(this.openVolume(`read(region ${region})`).readRegion(region, volume)) };
  }

  private transfer(request: Fields): Fields {
    const region = integerField(request, 'region', 'transfer');
    this.openVolume(`transfer(region ${region})`).transfer(region);
    return {};
  }

  private failpoint(request: Fields): Fields {
    const afterIo = field(request, 'crashAfterIo', 'failpoint');
    const mode = request.mode ?? 'process';
    if (mode !== 'process' && mode !== 'power')
      throw badRequest(`failpoint: mode must be "process" or "power", got ${show(mode)}`);
    const seed = request.seed ?? 0;
    if (!Number.isSafeInteger(seed)) throw badRequest(`failpoint: seed must be an integer, got ${show(seed)}`);
    const torn = request.torn ?? false;
    if (typeof torn !== 'boolean') throw badRequest(`failpoint: torn must be true or false, got ${show(torn)}`);
    if (afterIo === null) {
      this.storage.disarm();
      return {};
    }
    if (!Number.isSafeInteger(afterIo) || (afterIo as number) < 0)
      throw badRequest(`failpoint: crashAfterIo must be a count >= 0 or null, got ${show(afterIo)}`);
    this.storage.armCrash({ afterIo: afterIo as number, mode, seed: seed as number, torn });
    return {};
  }
}

export interface ServeOptions extends AdapterServerOptions {
  readonly input?: Readable;
  readonly output?: Writable;
  /** Ends the process (default process.exit): at a failpoint, and when output is gone. */
  readonly exit?: (code: number) => void;
  readonly maxLineBytes?: number;
}

/**
 * Serves requests from `input` (stdin) until it ends; resolves with the exit
 * status (0). At a failpoint it calls `exit(failpointExitCode)` without answering.
 */
export function serveAdapter(options: ServeOptions = {}): Promise<number> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const maxLineBytes = options.maxLineBytes ?? requestLineBytesMax;
  const server = new AdapterServer(options);
  const log = options.log ?? ((line: string) => process.stderr.write(`cowmap adapter: ${line}\n`));
  const splitter = new LineSplitter(maxLineBytes);
  let stopped = false;

  return new Promise<number>((resolve) => {
    // Lines read but not yet served. Input is paused while any wait or while the
    // client is not reading the answers, so memory stays within one chunk of
    // input, one line and one answer.
    const queue: LineEvent[] = [];
    let blocked = false;
    let ended = false;

    const stop = (code: number, why: string): void => {
      if (stopped) return;
      stopped = true;
      queue.length = 0;
      input.pause();
      input.removeAllListeners('data');
      log(why);
      // Earlier answers still buffered go out first (they answered earlier
      // requests); nothing else happens before the exit.
      const pending = (output as Writable & { writableLength?: number }).writableLength ?? 0;
      if (pending === 0) exit(code);
      else {
        const timer = setTimeout(() => exit(code), 1000);
        output.once('drain', () => {
          clearTimeout(timer);
          exit(code);
        });
      }
    };

    const answer = (result: HandleResult | null): void => {
      if (result === null) return;
      if (result.kind === 'crash') {
        const crash = result.crash;
        stop(
          failpointExitCode,
          `failpoint: ${crash.mode} crash after durable call ${crash.ioCount}; exiting with ${failpointExitCode} without answering`,
        );
        return;
      }
      let line: string;
      try {
        line = `${JSON.stringify(result.response)}\n`;
      } catch (error) {
        line = `${JSON.stringify({ id: result.response.id ?? null, ok: false, error: { code: 'E_IO', message: `internal error: the answer cannot be encoded: ${String(error)}` }, io: 0 })}\n`;
      }
      if (!output.write(line)) {
        blocked = true;
        output.once('drain', () => {
          blocked = false;
          pump();
        });
      }
    };

    const pump = (): void => {
      while (!stopped && !blocked && queue.length > 0) {
        const event = queue.shift()!;
        answer(
          event.kind === 'oversized' ? server.oversized(event.length, maxLineBytes) : server.handleLine(event.bytes),
        );
      }
      if (stopped || blocked || queue.length > 0) return;
      if (!ended) {
        input.resume();
        return;
      }
      stopped = true;
      server.shutdown();
      resolve(0);
    };

    input.on('data', (chunk: Buffer | string) => {
      if (stopped) return;
      queue.push(...splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
      input.pause();
      pump();
    });
    input.once('end', () => {
      if (stopped) return;
      ended = true;
      const last = splitter.flush();
      if (last !== null) queue.push(last);
      pump();
    });
    input.once('error', (error) => stop(1, `reading requests failed: ${error.message}`));
    output.on('error', (error) => {
      // The client went away: nobody can read an answer any more.
      if (stopped) return;
      server.shutdown();
      stop(0, `writing answers failed (${(error as NodeJS.ErrnoException).code ?? error.message}); exiting`);
    });
  });
}
