// The client's reading of answers (docs/adapter.md): a line is checked against
// the protocol (JSON, the request's id, a boolean ok, an error {code, message},
// an io count where failpoint is offered) and then read as what its request
// asked for (hello's fields, a phase, a state, a region's data). Whatever is
// wrong goes to `fail`, which the caller turns into a ProtocolError.

import type { Feature, SutOp, SutReply, SutState } from '../sut/systemUnderTest.ts';
import { decodeBase64, decodeUtf8, preview } from './lines.ts';
import { isJsonObject, type JsonObject, protocolFeatures, protocolVersion } from './protocol.ts';

/** Reports what an answer did wrong; never returns. */
export type Fail = (message: string) => never;

/** An answer as the adapter printed it (checked to be a JSON object with the request's id, a boolean ok, and an error {code, message} when not ok). */
export type RawAnswer = Readonly<Record<string, unknown>> & { readonly ok: boolean };

/** A checked answer, as the client reads it. */
export type Answer = JsonObject & { readonly ok: boolean };

export interface HelloInfo {
  readonly protocol: number;
  readonly name: string;
  readonly version: string;
  readonly features: readonly string[];
}

/** A failing reply: a well-formed error answer. */
export type ErrorReply = Extract<SutReply, { readonly ok: false }>;

const digestPattern = /^[0-9a-f]{64}$/;
const bitsPattern = /^[01]*$/;
const errorCodePattern = /^E_[A-Z0-9_]+$/;

/** One answer line, checked against the protocol; `ioRequired` when the implementation offers failpoint. */
export function parseAnswer(bytes: Buffer, id: number, op: string, ioRequired: boolean, fail: Fail): Answer {
  const what = `request ${id} (${op})`;
  const text = decodeUtf8(bytes);
  let value: unknown;
  try {
    if (text === null) throw new Error('not UTF-8');
    value = JSON.parse(text);
  } catch {
    fail(`printed a line that is not JSON where the answer to ${what} was due: ${preview(bytes)}`);
  }
  if (!isJsonObject(value)) fail(`answered ${what} with a line that is not a JSON object: ${preview(bytes)}`);
  if (value.id !== id) fail(`answered ${what} with id ${JSON.stringify(value.id) ?? 'missing'}: ${preview(bytes)}`);
  if (typeof value.ok !== 'boolean') fail(`answered ${what} without a boolean "ok": ${preview(bytes)}`);
  if (!value.ok && !isErrorField(value.error)) {
    fail(`answered ${what} with ok: false but without an error {code: "E_...", message}: ${preview(bytes)}`);
  }
  if (value.io !== undefined && (!Number.isSafeInteger(value.io) || (value.io as number) < 0)) {
    fail(`answered ${what} with io ${JSON.stringify(value.io)}, not a count: ${preview(bytes)}`);
  }
  if (value.io === undefined && ioRequired) {
    fail(`answered ${what} without io, which a SUT offering failpoint must report: ${preview(bytes)}`);
  }
  return value as Answer;
}

function isErrorField(error: unknown): boolean {
  return (
    isJsonObject(error) &&
    typeof error.code === 'string' &&
    errorCodePattern.test(error.code) &&
    typeof error.message === 'string'
  );
}

/** Hello's answer: the protocol version, the name, the version and the features it offers. */
export function readHello(answer: Answer, fail: Fail): { readonly info: HelloInfo; readonly features: Set<Feature> } {
  if (!answer.ok) fail(`answered hello with an error: ${describeError(answer)}`);
  if (answer.protocol !== protocolVersion) {
    fail(
      `speaks adapter protocol ${JSON.stringify(answer.protocol)}, not ${protocolVersion} (hello answered ${preview(Buffer.from(JSON.stringify(answer)))})`,
    );
  }
  const features = answer.features;
  if (!Array.isArray(features) || !features.every((feature) => typeof feature === 'string')) {
    fail(`hello: features must be a list of strings, got ${JSON.stringify(features)}`);
  }
  if (typeof answer.name !== 'string' || typeof answer.version !== 'string') {
    fail(
      `hello: name and version must be strings, got ${JSON.stringify(answer.name)} and ${JSON.stringify(answer.version)}`,
    );
  }
  const named = features as string[];
  return {
    info: { protocol: protocolVersion, name: answer.name, version: answer.version, features: named },
    features: new Set(protocolFeatures.filter((feature) => named.includes(feature))),
  };
}

/** "E_CODE: message" of an error answer, "ok" of another. */
export function describeError(answer: Answer): string {
  const error = answer.error as { code: string; message: string } | undefined;
  return error === undefined ? 'ok' : `${error.code}: ${error.message}`;
}

function ioField(answer: Answer): { io?: number } {
  return typeof answer.io === 'number' ? { io: answer.io } : {};
}

export function errorReplyOf(answer: Answer): ErrorReply {
  const error = answer.error as { code: string; message: string };
  return { ok: false, code: error.code, message: error.message, ...ioField(answer) };
}

/** A successful answer without data (open, reopen). */
export function okReplyOf(answer: Answer): SutReply {
  return { ok: true, ...ioField(answer) };
}

/** The reply to `op`: an error, a plain ok, or a read's data. */
export function replyOf(op: SutOp, answer: Answer, fail: Fail): SutReply {
  if (!answer.ok) return errorReplyOf(answer);
  if (op.type !== 'read') return okReplyOf(answer);
  const data = typeof answer.data === 'string' ? decodeBase64(answer.data) : null;
  if (data === null) fail(`answered read(region ${op.region}, ${op.volume}) without base64 data`);
  return { ok: true, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), ...ioField(answer) };
}

export function checkPhase(op: string, answer: Answer, fail: Fail): void {
  if (answer.phase !== 'idle' && answer.phase !== 'replicating') {
    fail(`answered ${op} with phase ${JSON.stringify(answer.phase)}, not "idle" or "replicating"`);
  }
}

/** A state answer, each field checked (of `regions` entries when the geometry is known). */
export function readState(answer: Answer, regions: number | undefined, fail: Fail): SutState {
  if (!answer.ok) fail(`answered state with an error: ${describeError(answer)}`);
  checkPhase('state', answer, fail);
  const problems: string[] = [];
  const bits = (field: string): string => {
    const value = answer[field];
    if (typeof value === 'string' && bitsPattern.test(value) && (regions === undefined || value.length === regions))
      return value;
    problems.push(`${field} must be a string of ${regions ?? 'n'} bits, got ${JSON.stringify(value)?.slice(0, 80)}`);
    return '';
  };
  const digests = (field: string, nullable: boolean): (string | null)[] => {
    const value = answer[field];
    const valid =
      Array.isArray(value) &&
      (regions === undefined || value.length === regions) &&
      value.every((entry) => (typeof entry === 'string' && digestPattern.test(entry)) || (nullable && entry === null));
    if (valid) return value as (string | null)[];
    problems.push(
      `${field} must be a list of ${regions ?? 'n'} lower-case SHA-256 digests${nullable ? ' or nulls' : ''}, got ${JSON.stringify(value)?.slice(0, 80)}`,
    );
    return [];
  };
  const state: SutState = {
    phase: answer.phase as SutState['phase'],
    current: bits('current'),
    next: bits('next'),
    cow: bits('cow'),
    primary: digests('primary', false) as string[],
    secondary: digests('secondary', false) as string[],
    cowData: digests('cowData', true),
    // Optional: D, from an adapter whose volume keeps a consistent image (feature `consistent`).
    ...(answer.consistent === undefined ? {} : { consistent: digests('consistent', false) as string[] }),
  };
  if (problems.length > 0) fail(`answered state with a malformed state: ${problems.join('; ')}`);
  return state;
}
