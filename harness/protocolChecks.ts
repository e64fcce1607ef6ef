// The adapter protocol's own rules (docs/adapter.md), checked with raw requests:
// what no trace, path test or generated sequence sends, because the SystemUnderTest
// interface cannot say it. An unknown op, a missing, mistyped or malformed field,
// create over a volume, open of nothing, a second process on a held volume, a
// forbidden geometry, and a reopen after a kill.
//
// Codes decide, never wording: a rejection must carry the code the rule names and
// a message that is a non-empty string. Each check is named, and its failure
// names the request sent and the answer got. An answer that breaks the protocol
// (not JSON, another id, the process gone) fails the check that provoked it; a
// failure to set a check up (hello, a valid create) is the ProtocolError it is,
// which the runner reports as an adapter it cannot drive.

import { join } from 'node:path';
import type { Geometry } from '../model/types.ts';
import { AdapterSut } from './adapter/adapterSut.ts';
import { makeTrackedTemporaryDir, removeTemporaryDir } from './adapter/temporaryDirs.ts';
import { ProtocolError } from './adapter/protocolError.ts';
import type { AdapterSutOptions } from './adapter/adapterSutOptions.ts';
import type { RawAnswer } from './adapter/answers.ts';
import type { SutState } from './sut/systemUnderTest.ts';

export interface ProtocolCheckResult {
  readonly name: string;
  readonly passed: boolean;
  readonly message: string | null;
  readonly seconds: number;
}

export interface ProtocolCheckOptions {
  readonly command: readonly string[];
  readonly requestTimeoutMs: number;
  readonly transcript?: AdapterSutOptions['transcript'];
  /** Checked between checks: true ends the run (the results say how far it got). */
  readonly shouldStop?: () => boolean;
}

/** A check's verdict against the implementation (not a fault of the suite). */
class CheckFailure extends Error {}

/** Small, with a region past the first map byte and a region size whose base64 needs padding. */
const checkGeometry: Geometry = { regions: 9, regionSize: 1024 };

interface Context {
  /** The implementation's main process, kept across checks (restarted if a check broke it). */
  readonly sut: AdapterSut;
  /** Another process of the same command, closed when the run ends. */
  secondSut(): AdapterSut;
  /** A fresh directory under the run's scratch root (not made). */
  scratchPath(name: string): string;
}

interface Check {
  readonly name: string;
  run(context: Context): Promise<void>;
}

function show(value: unknown, max = 160): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

function describeRequest(op: string, fields: Readonly<Record<string, unknown>>): string {
  return show({ op, ...fields });
}

function describeAnswer(answer: RawAnswer): string {
  if (answer.ok) return `ok ${show(answer)}`;
  const error = answer.error as { code: string; message: string };
  return `${error.code} ${show(error.message)}`;
}

/** Sends a raw request; an answer that breaks the protocol fails the check. */
async function probe(sut: AdapterSut, op: string, fields: Readonly<Record<string, unknown>>): Promise<RawAnswer> {
  try {
    return await sut.request(op, fields);
  } catch (error) {
    if (error instanceof ProtocolError) throw new CheckFailure(`sent ${describeRequest(op, fields)}: ${error.message}`);
    throw error;
  }
}

/** The request must be rejected with `code` (or one of `codes`, where the protocol's words admit two readings). */
async function expectCode(
  sut: AdapterSut,
  op: string,
  fields: Readonly<Record<string, unknown>>,
  code: string | readonly string[],
): Promise<void> {
  const answer = await probe(sut, op, fields);
  const sent = describeRequest(op, fields);
  const codes = typeof code === 'string' ? [code] : code;
  const expected = codes.join(' or ');
  if (answer.ok) throw new CheckFailure(`sent ${sent}: expected ${expected}, got ${describeAnswer(answer)}`);
  const error = answer.error as { code: string; message: string };
  if (!codes.includes(error.code))
    throw new CheckFailure(`sent ${sent}: expected ${expected}, got ${describeAnswer(answer)}`);
  if (error.message.trim().length === 0)
    throw new CheckFailure(`sent ${sent}: answered ${error.code} with an empty message (a rejection must say why)`);
}

async function expectOk(
  sut: AdapterSut,
  op: string,
  fields: Readonly<Record<string, unknown>>,
  why: string,
): Promise<RawAnswer> {
  const answer = await probe(sut, op, fields);
  if (!answer.ok)
    throw new CheckFailure(`${why}: sent ${describeRequest(op, fields)}, expected ok, got ${describeAnswer(answer)}`);
  return answer;
}

async function stateOf(sut: AdapterSut, why: string): Promise<SutState> {
  try {
    return await sut.state();
  } catch (error) {
    if (error instanceof ProtocolError) throw new CheckFailure(`${why}: state: ${error.message}`);
    throw error;
  }
}

function sameState(a: SutState, b: SutState): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function stateDiff(before: SutState, after: SutState): string {
  const fields = Object.keys(before) as (keyof SutState)[];
  return fields
    .filter((field) => show(before[field]) !== show(after[field]))
    .map((field) => `${field}: ${show(before[field], 60)} -> ${show(after[field], 60)}`)
    .join('; ');
}

/** One region of content that is not zeros, base64. */
function regionData(regionSize: number, fill: number): string {
  return Buffer.alloc(regionSize, fill).toString('base64');
}

// ------------------------------------------------------------------ the checks

/** A request the rules reject with E_BAD_REQUEST; on an open volume it must change nothing. */
function badRequest(name: string, op: string, fields: (context: Context) => Readonly<Record<string, unknown>>): Check {
  return {
    name: `bad request: ${name}`,
    async run(context) {
      await context.sut.create(checkGeometry);
      const before = await stateOf(context.sut, 'before the request');
      await expectCode(context.sut, op, fields(context), 'E_BAD_REQUEST');
      const after = await stateOf(context.sut, `after ${describeRequest(op, fields(context))} was rejected`);
      if (op !== 'open' && !sameState(before, after)) {
        throw new CheckFailure(
          `sent ${describeRequest(op, fields(context))}: rejected, but the state changed: ${stateDiff(before, after)}`,
        );
      }
    },
  };
}

const data = regionData(checkGeometry.regionSize, 0x5a);
const last = checkGeometry.regions - 1;

const badRequests: readonly Check[] = [
  badRequest('write without data', 'write', () => ({ region: 0 })),
  badRequest('write with data not a string', 'write', () => ({ region: 0, data: 12345 })),
  badRequest('write with data not base64', 'write', () => ({ region: 0, data: '*'.repeat(data.length) })),
  badRequest('write without region', 'write', () => ({ data })),
  badRequest('write with region a string', 'write', () => ({ region: '0', data })),
  badRequest('write with region 1.5', 'write', () => ({ region: 1.5, data })),
  badRequest('write with region null', 'write', () => ({ region: null, data })),
  // E_BAD_REQUEST comes before E_RANGE (docs/protocol.md section 2).
  badRequest('write out of range without data', 'write', () => ({ region: checkGeometry.regions + 100 })),
  badRequest('read with volume "tertiary"', 'read', () => ({ region: last, volume: 'tertiary' })),
  badRequest('read without volume', 'read', () => ({ region: last })),
  badRequest('read with region a string', 'read', () => ({ region: String(last), volume: 'primary' })),
  // Idle: a well-formed transfer would be E_PHASE; the arguments are judged first.
  badRequest('transfer without region', 'transfer', () => ({})),
  badRequest('transfer with region 1.5', 'transfer', () => ({ region: 1.5 })),
  badRequest('open without dir', 'open', () => ({ create: false })),
  badRequest('open with dir not a string', 'open', () => ({ dir: 5, create: false })),
  badRequest('open with create not a boolean', 'open', (context) => ({
    dir: context.scratchPath('create-not-boolean'),
    create: 'yes',
  })),
  badRequest('open create with regions a string', 'open', (context) => ({
    dir: context.scratchPath('regions-string'),
    create: true,
    regions: '8',
    regionSize: 512,
  })),
  badRequest('open create with regionSize 512.5', 'open', (context) => ({
    dir: context.scratchPath('region-size-fraction'),
    create: true,
    regions: 8,
    regionSize: 512.5,
  })),
  badRequest('open create without regions', 'open', (context) => ({
    dir: context.scratchPath('no-regions'),
    create: true,
    regionSize: 512,
  })),
];

const unknownOp: Check = {
  name: 'unknown op',
  async run(context) {
    await context.sut.create(checkGeometry);
    await expectCode(context.sut, 'frobnicate', { region: 0 }, 'E_BAD_REQUEST');
    await stateOf(context.sut, 'after an unknown op the process must keep answering');
  },
};

const createOverVolume: Check = {
  name: 'open create over an existing volume',
  async run(context) {
    const { sut } = context;
    await sut.create(checkGeometry);
    await expectOk(sut, 'write', { region: last, data }, 'writing the volume');
    const before = await stateOf(sut, 'after a write');
    const dir = sut.volumeDir!;
    // Closed first: whether a process may open a volume it holds itself is not the question here.
    await expectOk(sut, 'close', {}, 'closing the volume');
    await expectCode(
      sut,
      'open',
      { dir, create: true, regions: checkGeometry.regions, regionSize: checkGeometry.regionSize },
      'E_EXISTS',
    );
    await expectOk(sut, 'open', { dir, create: false }, 'reopening the volume that create was refused over');
    const after = await stateOf(sut, 'after the reopen');
    if (!sameState(before, after))
      throw new CheckFailure(`create over ${dir} was refused, but the volume changed: ${stateDiff(before, after)}`);
  },
};

const openMissing: Check = {
  name: 'open of a missing volume',
  async run(context) {
    await expectCode(context.sut, 'open', { dir: context.scratchPath('no-such-dir'), create: false }, 'E_NOT_FOUND');
    const empty = makeTrackedTemporaryDir('cowmap-check-');
    try {
      // An empty directory holds no volume; an implementation may also call its missing metadata corrupt.
      await expectCode(context.sut, 'open', { dir: empty, create: false }, ['E_NOT_FOUND', 'E_CORRUPT']);
    } finally {
      removeTemporaryDir(empty);
    }
  },
};

const secondProcess: Check = {
  name: 'open of a volume another process holds',
  async run(context) {
    const { sut } = context;
    await sut.create(checkGeometry);
    await expectOk(sut, 'write', { region: 0, data }, 'writing the volume');
    const dir = sut.volumeDir!;
    const second = context.secondSut();
    await expectCode(second, 'open', { dir, create: false }, 'E_LOCKED');
    await expectOk(
      sut,
      'write',
      { region: last, data },
      `after a second process was refused ${dir}, the holder must still work`,
    );
    const state = await stateOf(sut, 'the holder, after the refusal');
    if (state.next[0] !== '1' || state.next[last] !== '1')
      throw new CheckFailure(`the holder's writes to regions 0 and ${last} are not in its next map: ${state.next}`);
  },
};

function forbiddenGeometry(regions: number, regionSize: number): Check {
  return {
    name: `forbidden geometry: ${regions} x ${regionSize} B`,
    async run(context) {
      const dir = context.scratchPath(`geometry-${regions}-${regionSize}`);
      // A negative count is a geometry the protocol forbids (E_SIZE) or, read as a malformed field, E_BAD_REQUEST.
      await expectCode(
        context.sut,
        'open',
        { dir, create: true, regions, regionSize },
        regions < 0 || regionSize < 0 ? ['E_SIZE', 'E_BAD_REQUEST'] : 'E_SIZE',
      );
      await expectOk(
        context.sut,
        'open',
        { dir, create: true, regions: checkGeometry.regions, regionSize: checkGeometry.regionSize },
        `after E_SIZE, a valid create in the same dir must work`,
      );
      await expectOk(context.sut, 'close', {}, 'closing it');
    },
  };
}

const forbiddenGeometries: readonly Check[] = [
  forbiddenGeometry(0, 512),
  forbiddenGeometry(-1, 512),
  forbiddenGeometry(4, 0),
  forbiddenGeometry(4, 256),
  forbiddenGeometry(4, 511),
  forbiddenGeometry(4, 513),
  forbiddenGeometry(4, 1000),
  forbiddenGeometry(4, -512),
];

const reopenAfterKill: Check = {
  name: 'reopen after a kill',
  async run(context) {
    const { sut } = context;
    await sut.create(checkGeometry);
    for (const [op, fields] of [
      ['write', { region: 0, data }],
      ['write', { region: last, data: regionData(checkGeometry.regionSize, 0xa5) }],
      ['startCycle', {}],
      ['write', { region: 0, data: regionData(checkGeometry.regionSize, 0x3c) }],
      ['transfer', { region: last }],
    ] as const) {
      await expectOk(sut, op, fields, 'reaching a cycle with a COW copy');
    }
    const before = await stateOf(sut, 'before the kill');
    await sut.crash();
    const reopened = await sut.recover();
    if (!reopened.ok)
      throw new CheckFailure(
        `after a kill (SIGKILL of its process group), a new process answered open {dir, create: false} with ${reopened.code} ${show(reopened.message)}`,
      );
    const after = await stateOf(sut, 'after the reopen');
    if (!sameState(before, after))
      throw new CheckFailure(
        `after a kill between requests and a reopen, the state is not what it was: ${stateDiff(before, after)}`,
      );
  },
};

export const protocolChecks: readonly Check[] = [
  unknownOp,
  ...badRequests,
  createOverVolume,
  openMissing,
  secondProcess,
  ...forbiddenGeometries,
  reopenAfterKill,
];

export async function runProtocolChecks(options: ProtocolCheckOptions): Promise<ProtocolCheckResult[]> {
  const sutOptions: AdapterSutOptions = {
    requestTimeoutMs: options.requestTimeoutMs,
    ...(options.transcript === undefined ? {} : { transcript: options.transcript }),
  };
  const sut = new AdapterSut(options.command, sutOptions);
  const seconds: AdapterSut[] = [];
  const scratch = makeTrackedTemporaryDir('cowmap-check-');
  let scratchCount = 0;
  const context: Context = {
    sut,
    secondSut() {
      const second = new AdapterSut(options.command, sutOptions);
      seconds.push(second);
      return second;
    },
    scratchPath: (name) => join(scratch, `${scratchCount++}-${name}`),
  };
  const results: ProtocolCheckResult[] = [];
  try {
    await sut.start();
    for (const check of protocolChecks) {
      if (options.shouldStop?.() === true) break;
      const started = performance.now();
      let message: string | null = null;
      try {
        await check.run(context);
      } catch (error) {
        if (!(error instanceof CheckFailure)) throw error;
        message = error.message;
      } finally {
        for (const second of seconds.splice(0)) await closeQuietly(second);
      }
      results.push({
        name: check.name,
        passed: message === null,
        message,
        seconds: (performance.now() - started) / 1000,
      });
    }
  } finally {
    await closeQuietly(sut);
    removeTemporaryDir(scratch);
  }
  return results;
}

/** Ends a process the checks started; a protocol failure while closing was already judged or will be by the next check. */
async function closeQuietly(sut: AdapterSut): Promise<void> {
  try {
    await sut.close();
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    sut.kill();
  }
}
