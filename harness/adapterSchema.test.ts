// docs/adapter.schema.json against real traffic: each adapter we ship (the reference
// `cowmap adapter`, the Python example, the skeleton) is driven through a scripted
// session that takes every op, every rejection the protocol defines but E_IO, malformed
// requests, a second process on a held volume, close and a second open, and a damaged
// volume. Every request line is validated against the request schema (the malformed ones
// must be rejected by it, as the adapter must reject them with E_BAD_REQUEST), and every
// answer against the answer schema of its request's op. A last case shows that the
// checks reject malformed answers.

import './noChildCoverage.ts'; // first: the adapters and cowmap processes it starts write no coverage files
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const schema = JSON.parse(readFileSync(join(repoRoot, 'docs/adapter.schema.json'), 'utf8')) as Record<string, unknown>;
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
ajv.addSchema(schema);
const schemaId = schema.$id as string;

function validator(name: string): ValidateFunction {
  const validate = ajv.getSchema(`${schemaId}#/$defs/${name}`);
  assert.ok(validate, `docs/adapter.schema.json has no $defs/${name}`);
  return validate;
}

const ops = [
  'hello',
  'open',
  'write',
  'read',
  'startCycle',
  'transfer',
  'completeCycle',
  'state',
  'failpoint',
  'close',
] as const;
const validRequest = validator('request');
const validErrorAnswer = validator('errorAnswer');
const validAnswerByOp = new Map<string, ValidateFunction>(ops.map((op) => [op, validator(`${op}Answer`)]));
const validLine = ajv.getSchema(schemaId)!;

const requestTimeoutMs = 30_000;
const stateKeys = ['phase', 'current', 'next', 'cow', 'primary', 'secondary', 'cowData'] as const;
const regions = 4;
const regionSize = 512;

type Json = Record<string, unknown>;

/** One request line and the answer line it got. `malformed`: the request is meant to break the schema. */
export interface Exchange {
  readonly process: string;
  readonly request: string;
  readonly answer: string;
  readonly malformed: boolean;
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parse(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}

/** What is wrong with one exchange under docs/adapter.schema.json and docs/adapter.md (empty: nothing). */
export function checkExchange(exchange: Exchange, features: readonly string[]): string[] {
  const problems: string[] = [];
  const where = `${exchange.process}: ${exchange.request.slice(0, 100)} -> ${exchange.answer.slice(0, 200)}`;
  const request = parse(exchange.request);
  const requestValid = request !== undefined && validRequest(request);
  if (exchange.malformed && requestValid)
    problems.push(`${where}: the request schema accepts a request meant to be malformed`);
  if (!exchange.malformed && !requestValid) problems.push(`${where}: request: ${ajv.errorsText(validRequest.errors)}`);
  const answer = parse(exchange.answer);
  if (!isRecord(answer)) return [...problems, `${where}: the answer is not a JSON object`];
  if (!validLine(answer))
    problems.push(`${where}: the line is neither a request nor an answer: ${ajv.errorsText(validLine.errors)}`);
  const op = isRecord(request) && typeof request.op === 'string' ? request.op : null;
  const validAnswer = requestValid && op !== null ? validAnswerByOp.get(op)! : validErrorAnswer;
  if (!validAnswer(answer)) problems.push(`${where}: answer: ${ajv.errorsText(validAnswer.errors)}`);
  const id = isRecord(request) && Number.isSafeInteger(request.id) ? request.id : null;
  if (answer.id !== id)
    problems.push(`${where}: the answer's id ${JSON.stringify(answer.id)} is not the request's ${JSON.stringify(id)}`);
  if (!requestValid && (answer.ok !== false || !isRecord(answer.error) || answer.error.code !== 'E_BAD_REQUEST')) {
    problems.push(`${where}: a malformed request must be answered E_BAD_REQUEST`);
  }
  if (features.includes('failpoint') && answer.io === undefined)
    problems.push(`${where}: an adapter offering failpoint must report io`);
  if (answer.ok === true && op === 'state')
    problems.push(...checkStateShape(answer).map((problem) => `${where}: ${problem}`));
  return problems;
}

/** What the schema cannot say about a state answer: lengths agree, and cow bit r is 1 exactly when cowData[r] is a digest. */
export function checkStateShape(state: Json): string[] {
  const problems: string[] = [];
  const lengths = ['current', 'next', 'cow', 'primary', 'secondary', 'cowData'].map(
    (key) => (state[key] as { length?: number } | undefined)?.length,
  );
  if (new Set(lengths).size !== 1) problems.push(`the bit strings and arrays differ in length: ${lengths.join(', ')}`);
  const cow = typeof state.cow === 'string' ? state.cow : '';
  const cowData = Array.isArray(state.cowData) ? state.cowData : [];
  for (let region = 0; region < Math.min(cow.length, cowData.length); region++) {
    if ((cow[region] === '1') !== (cowData[region] !== null))
      problems.push(`region ${region}: cow bit ${cow[region]} but cowData ${JSON.stringify(cowData[region])}`);
  }
  return problems;
}

/** One adapter process: requests go in one at a time; every line both ways is kept. */
class AdapterProcess {
  readonly exchanges: Exchange[] = [];
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private waiting: (() => void) | null = null;
  private closed = false;
  private nextId = 1;
  stderr = '';

  constructor(
    readonly label: string,
    command: readonly string[],
  ) {
    this.child = spawn(command[0]!, command.slice(1), { cwd: repoRoot, stdio: 'pipe', detached: true });
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
    const reader = createInterface({ input: this.child.stdout });
    reader.on('line', (line) => {
      this.lines.push(line);
      this.waiting?.();
    });
    reader.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
  }

  /** Sends a request (an object gets the next id unless it has one; a string goes as it is) and returns the parsed answer. */
  async send(request: Json | string, malformed = false): Promise<Json> {
    const line =
      typeof request === 'string'
        ? request
        : JSON.stringify('id' in request ? request : { id: this.nextId++, ...request });
    this.child.stdin.write(`${line}\n`);
    const deadline = Date.now() + requestTimeoutMs;
    while (this.lines.length === 0) {
      if (this.closed) throw new Error(`${this.label} exited before answering ${line}; its stderr:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`${this.label} did not answer ${line} within ${requestTimeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiting = null;
    }
    const answer = this.lines.shift()!;
    this.exchanges.push({ process: this.label, request: line, answer, malformed });
    const parsed = parse(answer);
    assert.ok(isRecord(parsed), `${this.label}: the answer to ${line} is not a JSON object: ${answer}`);
    return parsed;
  }

  /** Ends stdin and waits for the exit; kills the process group if it does not come. */
  async end(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.stdin.end();
    const timer = setTimeout(() => this.kill(), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  kill(): void {
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function regionData(label: string, size = regionSize): string {
  const bytes = Buffer.alloc(size);
  bytes.write(label);
  return bytes.toString('base64');
}

function code(answer: Json): string {
  return answer.ok === true ? 'ok' : isRecord(answer.error) ? String(answer.error.code) : '?';
}

/** Overwrites every file under dir with bytes no implementation takes for its metadata. */
function damageVolume(dir: string): number {
  let files = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    if (stat.isDirectory()) files += damageVolume(path);
    else if (stat.isFile()) {
      writeFileSync(path, Buffer.alloc(Math.max(stat.size, 64), 0xa5));
      files++;
    }
  }
  return files;
}

interface Session {
  readonly exchanges: Exchange[];
  readonly features: string[];
  readonly codes: Set<string>;
}

/** The scripted session: every op, every code but E_IO, malformed input, a second process, close and a second open. */
async function runSession(label: string, command: readonly string[]): Promise<Session> {
  const root = mkdtempSync(join(tmpdir(), 'cowmap-schema-'));
  const dir = join(root, 'volume');
  const first = new AdapterProcess(label, command);
  const processes = [first];
  const codes = new Set<string>();
  const expect = async (request: Json | string, wanted: string, malformed = false, on = first): Promise<Json> => {
    const answer = await on.send(request, malformed);
    codes.add(code(answer));
    assert.equal(
      code(answer),
      wanted,
      `${label}: ${typeof request === 'string' ? request : JSON.stringify(request).slice(0, 120)} answered ${JSON.stringify(answer).slice(0, 300)}`,
    );
    return answer;
  };
  try {
    const hello = await expect({ op: 'hello' }, 'ok');
    const features = hello.features as string[];
    await expect({ op: 'open', dir: join(root, 'none'), create: false }, 'E_NOT_FOUND');
    await expect({ op: 'state' }, 'E_PHASE');
    await expect({ op: 'open', dir, create: true, regions: 0, regionSize }, 'E_SIZE');
    await expect({ op: 'open', dir, create: true, regions, regionSize: 1000 }, 'E_SIZE');
    await expect({ op: 'open', dir, create: true, regions, regionSize }, 'ok');
    await expect({ op: 'write', region: 0, data: regionData('A1') }, 'ok');
    await expect({ op: 'write', region: 1, data: regionData('B1') }, 'ok');
    await expect({ op: 'write', region: regions, data: regionData('X') }, 'E_RANGE');
    await expect({ op: 'write', region: 0, data: regionData('short', 100) }, 'E_SIZE');
    await expect({ op: 'write', region: 9, data: regionData('short', 100) }, 'E_RANGE');
    const read = await expect({ op: 'read', region: 0, volume: 'primary' }, 'ok');
    assert.equal(read.data, regionData('A1'));
    await expect({ op: 'read', region: 0, volume: 'secondary' }, 'ok');
    await expect({ op: 'read', region: 7, volume: 'primary' }, 'E_RANGE');
    await expect({ op: 'transfer', region: 0 }, 'E_PHASE');
    await expect({ op: 'transfer', region: 9 }, 'E_RANGE');
    await expect({ op: 'completeCycle' }, 'E_PHASE');
    await expect({ op: 'startCycle' }, 'ok');
    await expect({ op: 'startCycle' }, 'E_PHASE');
    await expect({ op: 'write', region: 0, data: regionData('A2') }, 'ok');
    await expect({ op: 'write', region: 2, data: regionData('C1') }, 'ok');
    const during = await expect({ op: 'state' }, 'ok');
    assert.deepEqual(
      [during.phase, during.current, during.next, during.cow],
      ['replicating', '1100', '1010', '1010'],
      `${label}: state during the cycle`,
    );
    await expect({ op: 'transfer', region: 2 }, 'E_NOT_CURRENT');
    await expect({ op: 'completeCycle' }, 'E_NOT_DRAINED');
    await expect({ op: 'transfer', region: 0 }, 'ok');
    await expect({ op: 'transfer', region: 1 }, 'ok');
    await expect({ op: 'completeCycle' }, 'ok');
    // Disarming is a no-op where failpoints are offered; elsewhere the op is not known.
    await expect({ op: 'failpoint', crashAfterIo: null }, features.includes('failpoint') ? 'ok' : 'E_BAD_REQUEST');
    // Malformed requests: the schema rejects each, and so must the adapter (E_BAD_REQUEST), and it keeps running.
    const malformed: (Json | string)[] = [
      { op: 'frobnicate' },
      { op: 'write', region: 0 },
      { op: 'write', region: 0, data: '@@@@' },
      { op: 'write', region: 0, data: regionData('A3').slice(0, -2) },
      { op: 'write', region: '1', data: regionData('A3') },
      { op: 'transfer', region: 1.5 },
      { op: 'transfer', region: null },
      { op: 'read', region: 0, volume: 'tertiary' },
      { op: 'open', create: false },
      { op: 'open', dir, create: 'yes' },
      { op: 'open', dir: join(root, 'other'), create: true, regions: '4', regionSize },
      'this is not JSON',
      '[1, 2]',
      '{"op": "hello"}',
    ];
    for (const request of malformed) await expect(request, 'E_BAD_REQUEST', true);
    const before = await expect({ op: 'state' }, 'ok');
    // A second process on the held volume: E_LOCKED, and the holder is not disturbed.
    const second = new AdapterProcess(`${label} (second process)`, command);
    processes.push(second);
    await expect({ op: 'hello' }, 'ok', false, second);
    await expect({ op: 'open', dir, create: false }, 'E_LOCKED', false, second);
    assert.equal(await second.end(), 0, `${label}: the second process exits with 0 when its stdin closes`);
    const after = await expect({ op: 'state' }, 'ok');
    for (const key of stateKeys)
      assert.deepEqual(after[key], before[key], `${label}: ${key} after another process was refused the volume`);
    await expect({ op: 'close' }, 'ok');
    await expect({ op: 'write', region: 0, data: regionData('A3') }, 'E_PHASE');
    await expect({ op: 'open', dir, create: true, regions, regionSize }, 'E_EXISTS');
    const reopened = await expect({ op: 'open', dir, create: false }, 'ok');
    assert.equal(reopened.phase, 'idle');
    const again = await expect({ op: 'state' }, 'ok');
    for (const key of stateKeys)
      assert.deepEqual(again[key], before[key], `${label}: ${key} after close and a second open`);
    await expect({ op: 'close' }, 'ok');
    await expect({ op: 'close' }, 'ok');
    assert.ok(damageVolume(dir) > 0);
    await expect({ op: 'open', dir, create: false }, 'E_CORRUPT');
    assert.equal(await first.end(), 0, `${label}: exits with 0 when its stdin closes`);
    return { exchanges: processes.flatMap((process) => process.exchanges), features, codes };
  } finally {
    for (const process of processes) process.kill();
    rmSync(root, { recursive: true, force: true });
  }
}

const pythonMissing = spawnSync('python3', ['--version']).status !== 0;
const adapters: { readonly label: string; readonly command: readonly string[]; readonly python: boolean }[] = [
  { label: 'the reference (cowmap adapter)', command: ['node', 'bin/cowmap.js', 'adapter'], python: false },
  { label: 'the Python example', command: ['python3', 'examples/python-adapter/adapter.py'], python: true },
  { label: 'the skeleton', command: ['python3', 'examples/skeleton-adapter/adapter.py'], python: true },
];
const allCodes = [
  'ok',
  'E_RANGE',
  'E_SIZE',
  'E_PHASE',
  'E_NOT_CURRENT',
  'E_NOT_DRAINED',
  'E_CORRUPT',
  'E_NOT_FOUND',
  'E_EXISTS',
  'E_LOCKED',
  'E_BAD_REQUEST',
];
const validated: string[] = [];
after(() => {
  if (validated.length > 0) console.log(`docs/adapter.schema.json validated: ${validated.join('; ')}`);
});

describe('docs/adapter.schema.json', () => {
  it('compiles under draft-07 and defines an answer shape for every op', () => {
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
    for (const op of ops) assert.ok(validAnswerByOp.get(op));
  });

  for (const adapter of adapters) {
    const skip =
      adapter.python && pythonMissing ? 'python3 is not installed: the Python adapters are not checked' : false;
    it(`holds for every line of ${adapter.label}`, { skip }, async () => {
      const session = await runSession(adapter.label, adapter.command);
      assert.deepEqual(
        allCodes.filter((wanted) => !session.codes.has(wanted)),
        [],
        `${adapter.label}: the session covers every code`,
      );
      const problems = session.exchanges.flatMap((exchange) => checkExchange(exchange, session.features));
      assert.deepEqual(problems, []);
      const requestsSeen = new Set(
        session.exchanges.map((exchange) => (parse(exchange.request) as Json | undefined)?.op),
      );
      assert.deepEqual(
        ops.filter((op) => !requestsSeen.has(op)),
        [],
        `${adapter.label}: the session takes every op`,
      );
      validated.push(`${adapter.label}: ${session.exchanges.length} requests and ${session.exchanges.length} answers`);
    });
  }

  it('the skeleton stays a skeleton: at most 150 lines (examples/skeleton-adapter/README.md)', () => {
    const lines = readFileSync(join(repoRoot, 'examples/skeleton-adapter/adapter.py'), 'utf8').split('\n');
    assert.ok(
      lines.length - (lines.at(-1) === '' ? 1 : 0) <= 150,
      `examples/skeleton-adapter/adapter.py has ${lines.length} lines`,
    );
  });

  it('rejects malformed answers, which makes the checks above able to fail', () => {
    const digest = 'a'.repeat(64);
    const state = {
      id: 3,
      ok: true,
      phase: 'idle',
      current: '00',
      next: '01',
      cow: '00',
      primary: [digest, digest],
      secondary: [digest, digest],
      cowData: [null, null],
      io: 0,
    };
    const good: Exchange = {
      process: 'probe',
      request: '{"id": 3, "op": "state"}',
      answer: JSON.stringify(state),
      malformed: false,
    };
    assert.deepEqual(checkExchange(good, ['failpoint']), []);
    const broken: [string, Json | string][] = [
      ['an upper-case digest', { ...state, primary: [digest.toUpperCase(), digest] }],
      ['no cowData', { ...state, cowData: undefined }],
      ['a bit string with a 2', { ...state, next: '02' }],
      ['an unknown phase', { ...state, phase: 'copying' }],
      ['a cow bit without its cowData', { ...state, cow: '10' }],
      ['a length that disagrees', { ...state, current: '000' }],
      ['another id', { ...state, id: 4 }],
      ['no io from an adapter offering failpoint', { ...state, io: undefined }],
      ['a negative io', { ...state, io: -1 }],
      ['an error without a message', { id: 3, ok: false, error: { code: 'E_PHASE' }, io: 0 }],
      ['an empty message', { id: 3, ok: false, error: { code: 'E_PHASE', message: '' }, io: 0 }],
      ['an unknown code', { id: 3, ok: false, error: { code: 'E_WHATEVER', message: 'no' }, io: 0 }],
      ['no ok', { id: 3, phase: 'idle', io: 0 }],
      ['not JSON', 'state: idle'],
    ];
    for (const [what, answer] of broken) {
      const line = typeof answer === 'string' ? answer : JSON.stringify(answer);
      assert.notDeepEqual(checkExchange({ ...good, answer: line }, ['failpoint']), [], `the checks accept ${what}`);
    }
    const hello = (answer: Json): Exchange => ({
      process: 'probe',
      request: '{"id": 1, "op": "hello"}',
      answer: JSON.stringify({ id: 1, ok: true, ...answer }),
      malformed: false,
    });
    assert.deepEqual(checkExchange(hello({ protocol: 1, name: 'x', version: '1', features: [] }), []), []);
    assert.notDeepEqual(
      checkExchange(hello({ protocol: 2, name: 'x', version: '1', features: [] }), []),
      [],
      'protocol 2 passes',
    );
    assert.notDeepEqual(
      checkExchange(hello({ protocol: 1, name: 'x', version: '1', features: 'failpoint' }), []),
      [],
      'features as a string passes',
    );
    const read = (data: unknown): Exchange => ({
      process: 'probe',
      request: '{"id": 2, "op": "read", "region": 0, "volume": "primary"}',
      answer: JSON.stringify({ id: 2, ok: true, data }),
      malformed: false,
    });
    assert.deepEqual(checkExchange(read(regionData('A1')), []), []);
    assert.notDeepEqual(checkExchange(read('QQ'), []), [], 'unpadded base64 passes');
    const unknownOp: Exchange = {
      process: 'probe',
      request: '{"id": 5, "op": "frobnicate"}',
      answer: '{"id": 5, "ok": true}',
      malformed: true,
    };
    assert.notDeepEqual(checkExchange(unknownOp, []), [], 'an unknown op answered ok passes');
  });
});
