// The reader of trace format v1 (docs/traces.md). It validates the whole file before
// anything runs: a trace that is not valid throws TraceError (E_BAD_REQUEST) with
// its line number.
//
// Choices where docs/traces.md is silent (docs/traces.md says the same):
// - unknown fields of a record are ignored, but unknown keys inside `expect` are
//   rejected: a misspelt expectation would otherwise check nothing;
// - a label longer than regionSize is invalid (use base64 to test E_SIZE);
// - between `crash` (or a step with crashAfterIo) and `recover`, every op must
//   carry `expectError: "E_PHASE"`, as the spec requires of the model;
// - `torn: true` beside `mode: "power"` asks for the torn model (an extension).

import { regionsMax } from '../../model/rules.ts';
import { TraceError } from './traceError.ts';
import { errorCodes, traceVersion } from './trace.ts';
import type {
  CrashPoint,
  ErrorCode,
  Expectation,
  ExpectedContent,
  OpStep,
  StepOp,
  Trace,
  TraceData,
  TraceHeader,
  TraceStep,
} from './trace.ts';

const stepOps: readonly StepOp[] = ['write', 'startCycle', 'transfer', 'completeCycle', 'cycle', 'crash', 'recover'];
const regionOps: readonly StepOp[] = ['write', 'transfer'];
const expectKeys = ['phase', 'primary', 'secondary', 'cow', 'current', 'next', 'consistent'] as const;
export const regionSizeMax = 1 << 26;
export const traceLinesMax = 1_000_000;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function defaultNames(regions: number): string[] {
  return Array.from({ length: regions }, (_, region) =>
    regions <= 26 ? String.fromCharCode(65 + region) : String(region),
  );
}

class LineReader {
  constructor(
    readonly file: string,
    readonly line: number,
  ) {}

  fail(detail: string): never {
    throw new TraceError(this.file, this.line, detail);
  }
}

function readHeader(at: LineReader, record: JsonObject): TraceHeader {
  if (record.trace !== 'cowmap') at.fail('the first record must be the header {"trace": "cowmap", "version": 1, ...}');
  const version = record.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1)
    at.fail('the header needs an integer version');
  if (version > traceVersion)
    at.fail(`trace version ${version} is newer than this reader, which reads version ${traceVersion}`);
  const regions = record.regions;
  if (typeof regions !== 'number' || !Number.isInteger(regions) || regions < 1 || regions > regionsMax) {
    at.fail(`regions must be an integer in 1..${regionsMax}`);
  }
  const regionSize = record.regionSize;
  if (
    typeof regionSize !== 'number' ||
    !Number.isInteger(regionSize) ||
    regionSize < 512 ||
    regionSize % 512 !== 0 ||
    regionSize > regionSizeMax
  ) {
    at.fail(`regionSize must be a positive multiple of 512 up to ${regionSizeMax}`);
  }
  let names = defaultNames(regions);
  if (record.names !== undefined) {
    const given = record.names;
    if (
      !Array.isArray(given) ||
      given.length !== regions ||
      !given.every((name) => typeof name === 'string' && name.length > 0)
    ) {
      at.fail(`names must be ${regions} non-empty strings`);
    }
    names = given as string[];
    if (new Set(names).size !== names.length) at.fail('names must be distinct');
  }
  const header: TraceHeader = { trace: 'cowmap', version, regions, regionSize, names };
  const extra: { title?: string; source?: string; seed?: string | number; features?: string[] } = {};
  for (const key of ['title', 'source'] as const) {
    const value = record[key];
    if (value !== undefined) {
      if (typeof value !== 'string') at.fail(`${key} must be a string`);
      extra[key] = value;
    }
  }
  if (record.seed !== undefined) {
    if (typeof record.seed !== 'string' && typeof record.seed !== 'number')
      at.fail('seed must be a string or a number');
    extra.seed = record.seed;
  }
  if (record.features !== undefined) {
    const features = record.features;
    if (!Array.isArray(features) || !features.every((feature) => typeof feature === 'string'))
      at.fail('features must be a list of strings');
    extra.features = features as string[];
  }
  return { ...header, ...extra };
}

function readRegion(at: LineReader, value: Json | undefined, header: TraceHeader): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) at.fail(`region ${value} is not an integer`);
    return value;
  }
  if (typeof value === 'string') {
    const index = header.names.indexOf(value);
    if (index < 0) at.fail(`unknown region name '${value}' (names: ${header.names.join(', ')})`);
    return index;
  }
  return at.fail('region must be a name or an index');
}

function readData(at: LineReader, value: Json | undefined, header: TraceHeader): TraceData {
  if (typeof value === 'string') {
    if (new TextEncoder().encode(value).length > header.regionSize)
      at.fail(`label '${value}' is longer than regionSize ${header.regionSize}`);
    return { label: value };
  }
  if (isObject(value) && typeof value.base64 === 'string') {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value.base64) || value.base64.length % 4 !== 0)
      at.fail('data.base64 is not valid base64');
    return { base64: value.base64 };
  }
  return at.fail('data must be a label or {"base64": "..."}');
}

function readExpectedContent(
  at: LineReader,
  value: Json | undefined,
  header: TraceHeader,
  allowNull: boolean,
  depth: number,
): ExpectedContent {
  if (value === null) {
    if (!allowNull) at.fail('null is allowed only in cow');
    return null;
  }
  if (Array.isArray(value)) {
    if (depth > 0 || value.length === 0) at.fail('a list of allowed contents must be non-empty and flat');
    return value.map((item) => readExpectedContent(at, item, header, allowNull, depth + 1) as TraceData | null);
  }
  return readData(at, value, header);
}

function readExpect(at: LineReader, value: Json | undefined, header: TraceHeader): Expectation {
  if (!isObject(value)) return at.fail('expect must be an object');
  const expectation: { -readonly [K in keyof Expectation]: Expectation[K] } = {};
  for (const key of Object.keys(value)) {
    if (!(expectKeys as readonly string[]).includes(key))
      at.fail(`unknown expectation '${key}' (known: ${expectKeys.join(', ')})`);
  }
  if (value.phase !== undefined) {
    if (value.phase !== 'idle' && value.phase !== 'replicating') at.fail('phase must be "idle" or "replicating"');
    expectation.phase = value.phase;
  }
  for (const key of ['primary', 'secondary', 'cow', 'consistent'] as const) {
    const list = value[key];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length !== header.regions) at.fail(`${key} must list ${header.regions} contents`);
    expectation[key] = list.map((item) => readExpectedContent(at, item, header, key === 'cow', 0));
  }
  for (const key of ['current', 'next'] as const) {
    const bits = value[key];
    if (bits === undefined) continue;
    if (typeof bits !== 'string' || bits.length !== header.regions || !/^[01]*$/.test(bits)) {
      at.fail(`${key} must be a bit string of ${header.regions} characters, region 0 first`);
    }
    expectation[key] = bits;
  }
  return expectation;
}

function readCrashPoint(at: LineReader, record: JsonObject): CrashPoint | undefined {
  if (record.crashAfterIo === undefined) {
    if (record.mode !== undefined || record.torn !== undefined) at.fail('mode and torn go with crashAfterIo');
    return undefined;
  }
  const afterIo = record.crashAfterIo;
  if (typeof afterIo !== 'number' || !Number.isInteger(afterIo) || afterIo < 0)
    at.fail('crashAfterIo must be a non-negative integer');
  const mode = record.mode ?? 'process';
  if (mode !== 'process' && mode !== 'power') at.fail('mode must be "process" or "power"');
  const seed = record.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isInteger(seed)) at.fail('seed must be an integer');
  const torn = record.torn ?? false;
  if (typeof torn !== 'boolean') at.fail('torn must be true or false');
  if (torn && mode !== 'power') at.fail('torn needs mode "power"');
  return { afterIo, mode, seed, torn };
}

function readOp(at: LineReader, record: JsonObject, header: TraceHeader): OpStep {
  const op = record.op as StepOp;
  if (typeof record.op !== 'string' || !stepOps.includes(op))
    at.fail(`unknown op '${String(record.op)}' (known: ${stepOps.join(', ')})`);
  const step: { -readonly [K in keyof OpStep]: OpStep[K] } = { kind: 'op', line: at.line, op };
  if (regionOps.includes(op)) step.region = readRegion(at, record.region, header);
  else if (record.region !== undefined) at.fail(`${op} takes no region`);
  if (op === 'write') step.data = readData(at, record.data, header);
  else if (record.data !== undefined) at.fail(`${op} takes no data`);
  if (record.expectError !== undefined) {
    if (typeof record.expectError !== 'string' || !(errorCodes as readonly string[]).includes(record.expectError)) {
      at.fail(`expectError must be one of ${errorCodes.join(', ')}`);
    }
    step.expectError = record.expectError as ErrorCode;
  }
  const crashAt = readCrashPoint(at, record);
  if (crashAt !== undefined) {
    // A crash inside recovery is modelled (model/crashOutcomes.ts) but trace format
    // v1 has no way to say which recovery I/O to crash at: it is not a trace step.
    if (op === 'crash' || op === 'cycle' || op === 'recover') at.fail(`crashAfterIo cannot go with ${op}`);
    if (step.expectError !== undefined) at.fail('crashAfterIo cannot go with expectError');
    step.crashAt = crashAt;
  }
  return step;
}

function parseRecord(at: LineReader, text: string): JsonObject {
  let parsed: Json;
  try {
    parsed = JSON.parse(text) as Json;
  } catch (error) {
    return at.fail(`not JSON: ${(error as Error).message}`);
  }
  return isObject(parsed) ? parsed : at.fail('a record must be a JSON object');
}

/** Reads and validates a whole trace; throws TraceError on the first invalid line. */
export function readTrace(text: string, file: string): Trace {
  const lines = text.split('\n');
  if (lines.length > traceLinesMax)
    throw new TraceError(file, traceLinesMax, `a trace has at most ${traceLinesMax} lines`);
  let header: TraceHeader | null = null;
  const steps: TraceStep[] = [];
  let crashedSince: number | null = null;
  for (let index = 0; index < lines.length; index++) {
    const at = new LineReader(file, index + 1);
    const text = lines[index]!.trim();
    if (text === '' || text.startsWith('#')) continue;
    const parsed = parseRecord(at, text);
    if (header === null) {
      header = readHeader(at, parsed);
      continue;
    }
    if (parsed.trace !== undefined) at.fail('a second header');
    if (parsed.expect !== undefined) {
      if (parsed.op !== undefined) at.fail('a record is either an op or an expect, not both');
      const label = parsed.at;
      if (label !== undefined && typeof label !== 'string') at.fail('at must be a string');
      const expect = readExpect(at, parsed.expect, header);
      steps.push(
        typeof label === 'string'
          ? { kind: 'expect', line: at.line, expect, at: label }
          : { kind: 'expect', line: at.line, expect },
      );
      continue;
    }
    const step = readOp(at, parsed, header);
    if (crashedSince !== null && step.op !== 'recover' && step.op !== 'crash' && step.expectError !== 'E_PHASE') {
      at.fail(`between the crash at line ${crashedSince} and recover, every op must carry "expectError": "E_PHASE"`);
    }
    if (step.op === 'recover' && step.expectError === undefined) crashedSince = null;
    if (step.op === 'crash' && crashedSince === null) crashedSince = at.line;
    if (step.crashAt !== undefined) crashedSince = at.line;
    steps.push(step);
  }
  if (header === null)
    throw new TraceError(
      file,
      lines.length,
      'no header: the first record must be {"trace": "cowmap", "version": 1, ...}',
    );
  const last = steps.filter((step): step is OpStep => step.kind === 'op').at(-1);
  if (last?.crashAt !== undefined) {
    // The recovered state is judged at recovery: a trace that ends first would check nothing.
    throw new TraceError(file, last.line, 'a step with crashAfterIo must be followed by recover');
  }
  return { file, header, steps };
}
