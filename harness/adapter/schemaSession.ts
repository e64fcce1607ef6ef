// The scripted session of the schema test (harness/adapterSchema.test.ts): one
// adapter driven through every op, every rejection the protocol defines but
// E_IO, malformed requests, a second process on a held volume, close and a
// second open, and a damaged volume, with every request line and its answer
// kept for the schema checks. Test-only: nothing outside *.test.ts imports this file.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdapterProcess } from './adapterProcess.ts';
import { isJsonObject, type JsonObject } from './protocol.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const requestTimeoutMs = 30_000;
const exitTimeoutMs = 10_000;
const stateKeys = ['phase', 'current', 'next', 'cow', 'primary', 'secondary', 'cowData'] as const;
export const regions = 4;
export const regionSize = 512;

/** One request line and the answer line it got. `malformed`: the request is meant to break the schema. */
export interface Exchange {
  readonly process: string;
  readonly request: string;
  readonly answer: string;
  readonly malformed: boolean;
}

/** One adapter process (adapterProcess.ts): requests go in one at a time; every line both ways is kept. */
class RecordingProcess {
  readonly exchanges: Exchange[] = [];
  private readonly process: AdapterProcess;
  private nextId = 1;

  constructor(
    readonly label: string,
    command: readonly string[],
  ) {
    this.process = new AdapterProcess(command, { cwd: repoRoot, maxLineBytes: 1 << 26, stderrBytesMax: 4000 });
  }

  /** Sends a request (an object gets the next id unless it has one; a string goes as it is) and returns the parsed answer. */
  async send(request: JsonObject | string, malformed = false): Promise<JsonObject> {
    const line =
      typeof request === 'string'
        ? request
        : JSON.stringify('id' in request ? request : { id: this.nextId++, ...request });
    this.process.send(`${line}\n`);
    const next = await this.process.nextLine(requestTimeoutMs);
    if (next.kind === 'closed')
      throw new Error(`${this.label} exited before answering ${line}; its stderr:\n${this.process.stderr}`);
    if (next.kind === 'timeout') throw new Error(`${this.label} did not answer ${line} within ${requestTimeoutMs} ms`);
    if (next.kind === 'violation') throw new Error(`${this.label}: ${next.message}`);
    const answer = next.bytes.toString('utf8');
    this.exchanges.push({ process: this.label, request: line, answer, malformed });
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer);
    } catch {
      parsed = undefined;
    }
    assert.ok(isJsonObject(parsed), `${this.label}: the answer to ${line} is not a JSON object: ${answer}`);
    return parsed;
  }

  /** Ends stdin and waits for the exit; kills the process group if it does not come. */
  async end(): Promise<number | null> {
    if (!this.process.closed) {
      this.process.endInput();
      if (!(await this.process.waitClosed(exitTimeoutMs))) this.kill();
      await this.process.waitClosed(exitTimeoutMs);
    }
    return this.process.exit?.code ?? null;
  }

  kill(): void {
    this.process.killGroup();
  }
}

export function regionData(label: string, size = regionSize): string {
  const bytes = Buffer.alloc(size);
  bytes.write(label);
  return bytes.toString('base64');
}

function code(answer: JsonObject): string {
  return answer.ok === true ? 'ok' : isJsonObject(answer.error) ? String(answer.error.code) : '?';
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

export interface Session {
  readonly exchanges: Exchange[];
  readonly features: string[];
  readonly codes: Set<string>;
}

/** What each step of the script needs: where the volume is, and the one way to send and check. */
interface Script {
  readonly label: string;
  readonly command: readonly string[];
  readonly root: string;
  readonly dir: string;
  readonly processes: RecordingProcess[];
  /** Sends `request` (to `on`, the first process by default) and asserts the answer's code. */
  expect(request: JsonObject | string, wanted: string, malformed?: boolean, on?: RecordingProcess): Promise<JsonObject>;
}

/** The scripted session: every op, every code but E_IO, malformed input, a second process, close and a second open. */
export async function runSession(label: string, command: readonly string[]): Promise<Session> {
  const root = mkdtempSync(join(tmpdir(), 'cowmap-schema-'));
  const first = new RecordingProcess(label, command);
  const processes = [first];
  const codes = new Set<string>();
  const script: Script = {
    label,
    command,
    root,
    dir: join(root, 'volume'),
    processes,
    async expect(request, wanted, malformed = false, on = first) {
      const answer = await on.send(request, malformed);
      codes.add(code(answer));
      const sent = typeof request === 'string' ? request : JSON.stringify(request).slice(0, 120);
      assert.equal(code(answer), wanted, `${label}: ${sent} answered ${JSON.stringify(answer).slice(0, 300)}`);
      return answer;
    },
  };
  try {
    const features = await openAndRejections(script);
    await oneCycle(script, features);
    await malformedRequests(script);
    const before = await script.expect({ op: 'state' }, 'ok');
    await secondProcessRefused(script, before);
    await closeReopenAndDamage(script, before);
    if (features.includes('consistent')) await consistentVolume(script);
    assert.equal(await first.end(), 0, `${label}: exits with 0 when its stdin closes`);
    return { exchanges: processes.flatMap((process) => process.exchanges), features, codes };
  } finally {
    for (const process of processes) process.kill();
    rmSync(root, { recursive: true, force: true });
  }
}

/** hello, the rejections before a volume is open, open, writes and reads (their rejections too); the features. */
async function openAndRejections(script: Script): Promise<string[]> {
  const hello = await script.expect({ op: 'hello' }, 'ok');
  const features = hello.features as string[];
  await script.expect({ op: 'open', dir: join(script.root, 'none'), create: false }, 'E_NOT_FOUND');
  await script.expect({ op: 'state' }, 'E_PHASE');
  await script.expect({ op: 'open', dir: script.dir, create: true, regions: 0, regionSize }, 'E_SIZE');
  await script.expect({ op: 'open', dir: script.dir, create: true, regions, regionSize: 1000 }, 'E_SIZE');
  await script.expect({ op: 'open', dir: script.dir, create: true, regions, regionSize }, 'ok');
  await script.expect({ op: 'write', region: 0, data: regionData('A1') }, 'ok');
  await script.expect({ op: 'write', region: 1, data: regionData('B1') }, 'ok');
  await script.expect({ op: 'write', region: regions, data: regionData('X') }, 'E_RANGE');
  await script.expect({ op: 'write', region: 0, data: regionData('short', 100) }, 'E_SIZE');
  await script.expect({ op: 'write', region: 9, data: regionData('short', 100) }, 'E_RANGE');
  const read = await script.expect({ op: 'read', region: 0, volume: 'primary' }, 'ok');
  assert.equal(read.data, regionData('A1'));
  await script.expect({ op: 'read', region: 0, volume: 'secondary' }, 'ok');
  await script.expect({ op: 'read', region: 7, volume: 'primary' }, 'E_RANGE');
  await script.expect({ op: 'transfer', region: 0 }, 'E_PHASE');
  await script.expect({ op: 'transfer', region: 9 }, 'E_RANGE');
  await script.expect({ op: 'completeCycle' }, 'E_PHASE');
  return features;
}

/** One cycle with its rejections, and the failpoint op where it is offered. */
async function oneCycle(script: Script, features: readonly string[]): Promise<void> {
  await script.expect({ op: 'startCycle' }, 'ok');
  await script.expect({ op: 'startCycle' }, 'E_PHASE');
  await script.expect({ op: 'write', region: 0, data: regionData('A2') }, 'ok');
  await script.expect({ op: 'write', region: 2, data: regionData('C1') }, 'ok');
  const during = await script.expect({ op: 'state' }, 'ok');
  assert.deepEqual(
    [during.phase, during.current, during.next, during.cow],
    ['replicating', '1100', '1010', '1010'],
    `${script.label}: state during the cycle`,
  );
  await script.expect({ op: 'transfer', region: 2 }, 'E_NOT_CURRENT');
  await script.expect({ op: 'completeCycle' }, 'E_NOT_DRAINED');
  await script.expect({ op: 'transfer', region: 0 }, 'ok');
  await script.expect({ op: 'transfer', region: 1 }, 'ok');
  await script.expect({ op: 'completeCycle' }, 'ok');
  // Disarming is a no-op where failpoints are offered; elsewhere the op is not known.
  await script.expect({ op: 'failpoint', crashAfterIo: null }, features.includes('failpoint') ? 'ok' : 'E_BAD_REQUEST');
}

/**
 * Feature `consistent`: a volume created with a consistent secondary reports D in
 * `consistent`, the old point until a cycle completes (docs/adapter.md, `open`).
 */
async function consistentVolume(script: Script): Promise<void> {
  const dir = join(script.root, 'consistent');
  await script.expect({ op: 'open', dir, create: true, regions, regionSize, consistent: 'yes' }, 'E_BAD_REQUEST', true);
  await script.expect({ op: 'open', dir, create: true, regions, regionSize, consistent: true }, 'ok');
  await script.expect({ op: 'write', region: 1, data: regionData('B1') }, 'ok');
  await script.expect({ op: 'startCycle' }, 'ok');
  await script.expect({ op: 'transfer', region: 1 }, 'ok');
  const sent = await script.expect({ op: 'state' }, 'ok');
  const zero = sent.primary !== undefined ? (sent.primary as string[])[0] : undefined;
  assert.deepEqual(sent.consistent, Array(regions).fill(zero), `${script.label}: D before the cycle completes`);
  await script.expect({ op: 'completeCycle' }, 'ok');
  const done = await script.expect({ op: 'state' }, 'ok');
  assert.deepEqual(done.consistent, done.secondary, `${script.label}: D after the cycle completed`);
  await script.expect({ op: 'close' }, 'ok');
}

/** Malformed requests: the schema rejects each, and so must the adapter, which keeps running. */
async function malformedRequests(script: Script): Promise<void> {
  const malformed: (JsonObject | string)[] = [
    { op: 'frobnicate' },
    { op: 'write', region: 0 },
    { op: 'write', region: 0, data: '@@@@' },
    { op: 'write', region: 0, data: regionData('A3').slice(0, -2) },
    { op: 'write', region: '1', data: regionData('A3') },
    { op: 'transfer', region: 1.5 },
    { op: 'transfer', region: null },
    { op: 'read', region: 0, volume: 'tertiary' },
    { op: 'open', create: false },
    { op: 'open', dir: script.dir, create: 'yes' },
    { op: 'open', dir: join(script.root, 'other'), create: true, regions: '4', regionSize },
    'this is not JSON',
    '[1, 2]',
    '{"op": "hello"}',
  ];
  for (const request of malformed) await script.expect(request, 'E_BAD_REQUEST', true);
}

/** A second process on the held volume: E_LOCKED, and the holder's state is as `before`. */
async function secondProcessRefused(script: Script, before: JsonObject): Promise<void> {
  const second = new RecordingProcess(`${script.label} (second process)`, script.command);
  script.processes.push(second);
  await script.expect({ op: 'hello' }, 'ok', false, second);
  await script.expect({ op: 'open', dir: script.dir, create: false }, 'E_LOCKED', false, second);
  assert.equal(await second.end(), 0, `${script.label}: the second process exits with 0 when its stdin closes`);
  const after = await script.expect({ op: 'state' }, 'ok');
  for (const key of stateKeys)
    assert.deepEqual(after[key], before[key], `${script.label}: ${key} after another process was refused the volume`);
}

/** close, a second open that finds the same state, and an open of the damaged volume (E_CORRUPT). */
async function closeReopenAndDamage(script: Script, before: JsonObject): Promise<void> {
  await script.expect({ op: 'close' }, 'ok');
  await script.expect({ op: 'write', region: 0, data: regionData('A3') }, 'E_PHASE');
  await script.expect({ op: 'open', dir: script.dir, create: true, regions, regionSize }, 'E_EXISTS');
  const reopened = await script.expect({ op: 'open', dir: script.dir, create: false }, 'ok');
  assert.equal(reopened.phase, 'idle');
  const again = await script.expect({ op: 'state' }, 'ok');
  for (const key of stateKeys)
    assert.deepEqual(again[key], before[key], `${script.label}: ${key} after close and a second open`);
  await script.expect({ op: 'close' }, 'ok');
  await script.expect({ op: 'close' }, 'ok');
  assert.ok(damageVolume(script.dir) > 0);
  await script.expect({ op: 'open', dir: script.dir, create: false }, 'E_CORRUPT');
}
