// The reference implementation (or a named mutant of it) answering the
// conformance adapter protocol v1 (docs/adapter.md), one request line at a time;
// serveAdapter.ts feeds it the lines of stdin (`cowmap adapter [--mutant NAME]`).
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
//   - Feature `consistent`: open with create and `consistent: true` makes the
//     volume's secondary a consistent one (a `consistent:` secondary in the
//     directory DIR.consistent beside it, impl/receive/receiverReplica.ts); state
//     then reports D's digests in `consistent`, for every volume that keeps one
//     (also when reopened: the metadata records the kind).
//   - A storage failure answers E_IO and poisons the volume until the next open
//     (impl/replicatedVolume.ts). Anything unexpected thrown while serving a
//     request (a bug, a mutant's broken assertion) answers E_IO "internal error",
//     logs the stack, and drops the volume: nothing a client sends crashes the server.

import { existsSync, statSync } from 'node:fs';
import { sha256Hex } from '../../impl/checksum.ts';
import { CowmapError, isCowmapError } from '../../impl/errors.ts';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { cowmapVersion } from '../conformance/report.ts';
import { isSimulatedCrash, SimulatedCrash } from '../crash/crashReport.ts';
import { CrashStorage } from '../crash/crashStorage.ts';
import { type CrashMode, crashModes, type VolumeClass } from '../types.ts';
import { decodeUtf8, encodeBase64 } from './lines.ts';
import { isJsonObject, type JsonObject, protocolFeatures, protocolVersion } from './protocol.ts';
import { badRequest, booleanField, dataField, field, integerField, show, stringField } from './requestFields.ts';

/** The exit status at a failpoint (the same as the Python example's). */
export const failpointExitCode = 86;
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

/** What one request line gives: a response to print, or a crash (print nothing, exit). */
export type HandleResult =
  | { readonly kind: 'response'; readonly response: JsonObject }
  | { readonly kind: 'crash'; readonly crash: SimulatedCrash };

/** One op's handler: the answer's fields beyond id, ok and io (nothing: none). */
export type Handler = (request: JsonObject) => JsonObject | void;

/** What is known of a request so far, for the answer to a failure: its id once read, its op once known. */
interface RequestHead {
  id: number | null;
  op: string;
}

/** Where a volume's consistent secondary goes: beside its directory, so that removing their parent removes both. */
export function consistentDirBeside(dir: string): string {
  return `${dir.replace(/\/+$/, '')}.consistent`;
}

/** D's digests, one a region, or null when the volume's secondary keeps no consistent image (E_BAD_REQUEST). */
function consistentDigests(volume: ReplicatedVolume): string[] | null {
  const digests: string[] = [];
  try {
    for (let region = 0; region < volume.regions; region++) digests.push(sha256Hex(volume.readConsistent(region)));
  } catch (error) {
    if (isCowmapError(error) && error.code === 'E_BAD_REQUEST' && digests.length === 0) return null;
    throw error;
  }
  return digests;
}

/** The default log: one line on stderr. */
export function logToStderr(line: string): void {
  process.stderr.write(`cowmap adapter: ${line}\n`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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
    this.version = options.version ?? cowmapVersion;
    this.log = options.log ?? logToStderr;
    this.handlers = new Map<string, Handler>([
      ['hello', () => this.hello()],
      ['open', (request) => this.open(request)],
      ['write', (request) => this.write(request)],
      ['read', (request) => this.read(request)],
      ['startCycle', () => this.openVolume('startCycle()').startCycle()],
      ['transfer', (request) => this.transfer(request)],
      ['completeCycle', () => this.openVolume('completeCycle()').completeCycle()],
      ['state', () => this.state()],
      ['failpoint', (request) => this.failpoint(request)],
      ['close', () => this.closeVolume()],
    ]);
  }

  /** Serves one request line (without its newline). Null for a blank line, which gets no answer. */
  handleLine(line: Uint8Array): HandleResult | null {
    const text = decodeUtf8(line);
    if (text !== null && text.trim() === '') return null;
    const head: RequestHead = { id: null, op: 'request' };
    let response: JsonObject;
    try {
      response = this.serve(text, head);
    } catch (error) {
      const failed = this.failure(error, head);
      if (failed.kind === 'crash') return failed;
      response = failed.response;
    }
    return this.finish(response);
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
      this.log(`closing the volume at the end failed: ${messageOf(error)}`);
    }
  }

  // ----- one request ------------------------------------------------------------

  /** Reads the request, runs its op's handler, and makes the answer; `head` learns the id and op as they are read. */
  private serve(text: string | null, head: RequestHead): JsonObject {
    if (text === null) throw badRequest('the request is not UTF-8');
    let request: unknown;
    try {
      request = JSON.parse(text);
    } catch {
      throw badRequest('the request is not a JSON object on one line');
    }
    if (!isJsonObject(request)) throw badRequest('the request is not a JSON object');
    if (!Number.isSafeInteger(request.id))
      throw badRequest(`the request has no integer 'id' (got ${show(request.id)})`);
    head.id = request.id as number;
    const handler = typeof request.op === 'string' ? this.handlers.get(request.op) : undefined;
    if (handler === undefined) throw badRequest(`unknown op ${show(request.op)}`);
    head.op = request.op as string;
    return { id: head.id, ok: true, ...(handler(request) ?? {}) };
  }

  /** What a request that threw gets: the crash it hit, its error code, or E_IO for anything unexpected. */
  private failure(error: unknown, head: RequestHead): HandleResult {
    if (isSimulatedCrash(error)) return { kind: 'crash', crash: error };
    if (this.storage.isCrashed) return this.crashed();
    if (isCowmapError(error)) return { kind: 'response', response: this.error(head.id, error.code, error.message) };
    // A bug below, or a mutant's broken assertion: answer, log, drop the volume.
    this.log(
      `internal error in ${head.op} (request ${head.id}): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    try {
      this.dropVolume();
    } catch (closing) {
      if (isSimulatedCrash(closing)) return { kind: 'crash', crash: closing };
      throw closing;
    }
    const message = `${head.op}: internal error: ${messageOf(error)}; the volume was closed, open it again`;
    return { kind: 'response', response: this.error(head.id, 'E_IO', message) };
  }

  /** The answer with its io count, unless a crash is due right after the request's last durable call: that comes first. */
  private finish(response: JsonObject): HandleResult {
    try {
      this.storage.crashIfDue();
    } catch (error) {
      if (isSimulatedCrash(error)) return { kind: 'crash', crash: error };
      throw error;
    }
    return { kind: 'response', response: { ...response, io: this.storage.takeIoCount() } };
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

  private error(id: number | null, code: string, message: string): JsonObject {
    return { id, ok: false, error: { code, message } };
  }

  // ----- the volume ---------------------------------------------------------------

  private openVolume(where: string): ReplicatedVolume {
    if (this.volume === null) throw new CowmapError('E_PHASE', `${where} while no volume is open: send open first`);
    return this.volume;
  }

  private closeVolume(): JsonObject {
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
      this.log(`closing the volume after an internal error failed too: ${messageOf(error)}`);
    }
    this.volume = null;
  }

  // ----- the ops --------------------------------------------------------------

  private hello(): JsonObject {
    return { protocol: protocolVersion, name: this.name, version: this.version, features: [...protocolFeatures] };
  }

  private open(request: JsonObject): JsonObject {
    const dir = stringField(request, 'dir', 'open');
    if (dir.length === 0 || dir.includes('\0'))
      throw badRequest(`open: the field 'dir' must be a path, got ${show(dir)}`);
    const create = booleanField(request, 'create', 'open');
    const geometry = create
      ? { regions: integerField(request, 'regions', 'open'), regionSize: integerField(request, 'regionSize', 'open') }
      : null;
    const consistent = request.consistent ?? false;
    if (typeof consistent !== 'boolean')
      throw badRequest(`open: the field 'consistent' must be true or false, got ${show(consistent)}`);
    // One volume at a time: the open one is closed first (so that reopening the
    // same directory in this process does not find it locked by ourselves).
    this.closeVolume();
    if (geometry !== null) {
      if (existsSync(dir) && !statSync(dir).isDirectory())
        throw new CowmapError('E_EXISTS', `create: ${dir} exists and is not a directory`);
      const options = consistent ? { consistentSecondaryDir: consistentDirBeside(dir) } : {};
      this.volume = this.volumeClass.create(this.storage, dir, geometry, options);
    } else {
      this.volume = this.volumeClass.open(this.storage, dir);
    }
    return { phase: this.volume.phase };
  }

  /** docs/adapter.md `state`, with `consistent` (D's digests) when the volume keeps a consistent image. */
  private state(): JsonObject {
    const volume = this.openVolume('state()');
    const consistent = consistentDigests(volume);
    return { ...volume.state(), ...(consistent === null ? {} : { consistent }) };
  }

  private write(request: JsonObject): JsonObject {
    const region = integerField(request, 'region', 'write');
    const data = dataField(request, 'write');
    this.openVolume(`write(region ${region})`).writeRegion(region, data);
    return {};
  }

  private read(request: JsonObject): JsonObject {
    const region = integerField(request, 'region', 'read');
    const volume = stringField(request, 'volume', 'read');
    if (volume !== 'primary' && volume !== 'secondary')
      throw badRequest(`read: the field 'volume' must be "primary" or "secondary", got ${show(volume)}`);
    return { data: encodeBase64(this.openVolume(`read(region ${region})`).readRegion(region, volume)) };
  }

  private transfer(request: JsonObject): JsonObject {
    const region = integerField(request, 'region', 'transfer');
    this.openVolume(`transfer(region ${region})`).transfer(region);
    return {};
  }

  private failpoint(request: JsonObject): JsonObject {
    const afterIo = field(request, 'crashAfterIo', 'failpoint');
    const mode = request.mode ?? 'process';
    if (!crashModes.includes(mode as CrashMode))
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
    this.storage.armCrash({ afterIo: afterIo as number, mode: mode as CrashMode, seed: seed as number, torn });
    return {};
  }
}
