// docs/adapter.schema.json against real traffic: each adapter we ship (the reference
// `cowmap adapter`, the Python example, the skeleton) is driven through a scripted
// session that takes every op, every rejection the protocol defines but E_IO, malformed
// requests, a second process on a held volume, close and a second open, and a damaged
// volume. Every request line is validated against the request schema (the malformed ones
// must be rejected by it, as the adapter must reject them with E_BAD_REQUEST), and every
// answer against the answer schema of its request's op (the session is
// harness/adapter/schemaSession.ts). A last case shows that the checks reject
// malformed answers.

import '../noChildCoverage.ts'; // first: the adapters and cowmap processes it starts write no coverage files
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { isJsonObject, type JsonObject } from './protocol.ts';
import { type Exchange, regionData, runSession } from './schemaSession.ts';
import { errorCodes } from '../trace/trace.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
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
  if (!isJsonObject(answer)) return [...problems, `${where}: the answer is not a JSON object`];
  if (!validLine(answer))
    problems.push(`${where}: the line is neither a request nor an answer: ${ajv.errorsText(validLine.errors)}`);
  const op = isJsonObject(request) && typeof request.op === 'string' ? request.op : null;
  const validAnswer = requestValid && op !== null ? validAnswerByOp.get(op)! : validErrorAnswer;
  if (!validAnswer(answer)) problems.push(`${where}: answer: ${ajv.errorsText(validAnswer.errors)}`);
  const id = isJsonObject(request) && Number.isSafeInteger(request.id) ? request.id : null;
  if (answer.id !== id)
    problems.push(`${where}: the answer's id ${JSON.stringify(answer.id)} is not the request's ${JSON.stringify(id)}`);
  if (!requestValid && (answer.ok !== false || !isJsonObject(answer.error) || answer.error.code !== 'E_BAD_REQUEST')) {
    problems.push(`${where}: a malformed request must be answered E_BAD_REQUEST`);
  }
  if (features.includes('failpoint') && answer.io === undefined)
    problems.push(`${where}: an adapter offering failpoint must report io`);
  if (answer.ok === true && op === 'state')
    problems.push(...checkStateShape(answer).map((problem) => `${where}: ${problem}`));
  return problems;
}

/** What the schema cannot say about a state answer: lengths agree, and cow bit r is 1 exactly when cowData[r] is a digest. */
export function checkStateShape(state: JsonObject): string[] {
  const problems: string[] = [];
  const keys = ['current', 'next', 'cow', 'primary', 'secondary', 'cowData'];
  const lengths = [...keys, ...(state.consistent === undefined ? [] : ['consistent'])].map(
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

const pythonMissing = spawnSync('python3', ['--version']).status !== 0;
const adapters: { readonly label: string; readonly command: readonly string[]; readonly python: boolean }[] = [
  { label: 'the reference (cowmap adapter)', command: ['node', 'bin/cowmap.js', 'adapter'], python: false },
  { label: 'the Python example', command: ['python3', 'examples/python-adapter/adapter.py'], python: true },
  { label: 'the skeleton', command: ['python3', 'examples/skeleton-adapter/adapter.py'], python: true },
];
// Every answer code but E_IO, which a conforming session never provokes.
const allCodes = ['ok', ...errorCodes];
const validated: string[] = [];
after(() => {
  if (validated.length > 0) console.log(`docs/adapter.schema.json validated: ${validated.join('; ')}`);
});

// The three sessions side by side: each mostly waits on its processes.
describe('docs/adapter.schema.json', { concurrency: true }, () => {
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
        session.exchanges.map((exchange) => (parse(exchange.request) as JsonObject | undefined)?.op),
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
    const broken: [string, JsonObject | string][] = [
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
    const hello = (answer: JsonObject): Exchange => ({
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
