// The pump (batchScheduler.ts) and a batch against the volume (engine.ts), with
// stand-in connections: group commit (one writeMany, one flush per batch), the
// order a connection's requests keep, zeroing in chunks that yield to other
// clients, the batch bound, a failing volume, and cycle slices that progress while
// clients saturate.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { BatchScheduler, type CycleSlices } from './batchScheduler.ts';
import { Engine } from './engine.ts';
import type { Session } from './handshake.ts';
import * as nbd from './protocol.ts';
import type { Replies } from './replies.ts';
import { type QueuedRequest, type RequestOrigin, RequestQueue } from './requestQueue.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-batch-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** What the volume was asked, in order. */
type Call = 'writeMany' | 'flush' | 'read' | 'transferRegions';

function spiedVolume(regions: number, regionSize: number): { volume: ReplicatedVolume; calls: Call[] } {
  const volume = ReplicatedVolume.create(new NodeStorage(), join(root, `v${dirs++}`), { regions, regionSize });
  const calls: Call[] = [];
  for (const name of ['writeMany', 'flush', 'read', 'transferRegions'] as const) {
    const original = (volume[name] as (...args: unknown[]) => unknown).bind(volume);
    (volume as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      calls.push(name);
      return original(...args);
    };
  }
  return { volume, calls };
}

/** A connection stand-in: it records its replies as `name cookie [error|data]`. */
class Client implements RequestOrigin {
  readonly name: string;
  readonly log: string[];
  readonly queue: RequestQueue;
  readonly session = { structuredReplies: false, metaContexts: new Map() } as unknown as Session;
  open = true;
  answeredCount = 0;
  readonly replies: Replies;

  constructor(name: string, log: string[]) {
    this.name = name;
    this.log = log;
    this.queue = new RequestQueue(this, 1024);
    this.replies = {
      done: (cookie: Buffer) => log.push(`${name} ${cookie.readUInt32BE(0)} done`),
      error: (cookie: Buffer, errno: number) => log.push(`${name} ${cookie.readUInt32BE(0)} error ${errno}`),
      read: (cookie: Buffer, _offset: number, data: Uint8Array) =>
        log.push(`${name} ${cookie.readUInt32BE(0)} read ${[...new Set(data)].join(',')}`),
    } as unknown as Replies;
  }

  answered(_request: QueuedRequest): void {
    this.answeredCount++;
  }

  corkReplies(): void {}
  uncorkReplies(): void {}

  send(type: number, cookie: number, offset: number, length: number, fill?: number, flags = 0): void {
    const cookieBytes = Buffer.alloc(8);
    cookieBytes.writeUInt32BE(cookie);
    const payload = fill === undefined ? null : Buffer.alloc(length, fill);
    this.queue.push({
      type,
      flags,
      cookie: cookieBytes,
      offset: BigInt(offset),
      length,
      payload,
      reservedBytes: 0,
      origin: this,
      zeroedBytes: 0,
      finished: false,
    });
  }
}

const noCycle: CycleSlices = { isRunning: false, step: () => {} };

/** Turns of the pump until `done` (or a bound, which fails the test). */
async function until(done: () => boolean, turnsMax = 10_000): Promise<void> {
  for (let turn = 0; turn < turnsMax && !done(); turn++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(done(), `not done after ${turnsMax} turns`);
}

function setup(options: { batchRequestsMax?: number; chunkBytes?: number; cycles?: CycleSlices } = {}) {
  const { volume, calls } = spiedVolume(16, 4096);
  const lines: string[] = [];
  const engine = new Engine(volume, {
    payloadMax: 65536,
    chunkBytes: options.chunkBytes ?? 8192,
    log: (line) => lines.push(line),
  });
  const scheduler = new BatchScheduler(engine, options.cycles ?? noCycle, options.batchRequestsMax ?? 64);
  const log: string[] = [];
  return { volume, calls, scheduler, log, lines, client: (name: string) => new Client(name, log) };
}

describe('batches', () => {
  test('group commit: the writes of three connections in one writeMany, their FLUSHes in one flush, answered after it', async () => {
    const { volume, calls, scheduler, log, client } = setup();
    const clients = [client('a'), client('b'), client('c')];
    clients.forEach((each, index) => {
      each.send(nbd.CMD_WRITE, 1, index * 4096 + 100, 200, index + 1);
      each.send(nbd.CMD_FLUSH, 2, 0, 0);
      scheduler.queued(each.queue);
    });
    await until(() => log.length === 6);
    assert.deepEqual(calls, ['writeMany', 'flush']);
    // The write replies go before the flush, the FLUSH replies after it.
    assert.deepEqual(log.slice(0, 3).sort(), ['a 1 done', 'b 1 done', 'c 1 done']);
    assert.deepEqual(log.slice(3).sort(), ['a 2 done', 'b 2 done', 'c 2 done']);
    assert.deepEqual([...volume.read(4096 + 100, 200)], Array(200).fill(2));
    volume.close();
  });

  test("a connection's READ after its WRITE sees it; a WRITE after an overlapping READ waits for the next batch", async () => {
    const { volume, calls, scheduler, log, client } = setup();
    const a = client('a');
    a.send(nbd.CMD_WRITE, 1, 0, 4096, 7);
    a.send(nbd.CMD_READ, 2, 0, 4096);
    a.send(nbd.CMD_WRITE, 3, 0, 4096, 9);
    a.send(nbd.CMD_READ, 4, 0, 4096);
    scheduler.queued(a.queue);
    await until(() => log.length === 4);
    assert.deepEqual(log, ['a 1 done', 'a 2 read 7', 'a 3 done', 'a 4 read 9']);
    assert.deepEqual(calls, ['writeMany', 'read', 'writeMany', 'read']);
    volume.close();
  });

  test('FUA writes are answered after the one flush of their batch; refused requests are answered on the way', async () => {
    const { volume, calls, scheduler, log, client } = setup();
    const a = client('a');
    a.send(nbd.CMD_WRITE, 1, 0, 10, 1, nbd.CMD_FLAG_FUA);
    a.send(nbd.CMD_READ, 2, 16 * 4096, 1);
    a.send(nbd.CMD_WRITE, 3, 16 * 4096 - 1, 2, 1);
    a.send(99, 4, 0, 0);
    a.send(nbd.CMD_WRITE, 5, 100, 10, 2);
    scheduler.queued(a.queue);
    await until(() => log.length === 5);
    assert.deepEqual(log, [
      `a 2 error ${nbd.EINVAL}`,
      `a 3 error ${nbd.ENOSPC}`,
      `a 4 error ${nbd.EINVAL}`,
      'a 5 done',
      'a 1 done',
    ]);
    assert.deepEqual(calls, ['writeMany', 'flush']);
    assert.equal(a.answeredCount, 5);
    volume.close();
  });

  test('a large WRITE_ZEROES runs in chunks, one per batch: another connection is answered in the first batch', async () => {
    const { volume, calls, scheduler, log, client } = setup({ chunkBytes: 8192 });
    volume.write(0, new Uint8Array(16 * 4096).fill(5));
    const a = client('a');
    const b = client('b');
    a.send(nbd.CMD_WRITE_ZEROES, 1, 0, 16 * 4096);
    a.send(nbd.CMD_READ, 2, 0, 16 * 4096);
    b.send(nbd.CMD_READ, 1, 8192, 4096);
    scheduler.queued(a.queue);
    scheduler.queued(b.queue);
    await until(() => log.length === 3);
    // b's READ ran in the first batch, after the first chunk (so it saw the old bytes);
    // a's READ only after the last chunk.
    assert.deepEqual(log, ['b 1 read 5', 'a 1 done', 'a 2 read 0']);
    assert.equal(calls.filter((call) => call === 'writeMany').length, 8);
    volume.close();
  });

  test('a batch holds at most batchRequestsMax requests, taken round-robin', async () => {
    const { volume, calls, scheduler, log, client } = setup({ batchRequestsMax: 3 });
    const a = client('a');
    const b = client('b');
    for (let index = 0; index < 4; index++) a.send(nbd.CMD_WRITE, index, index * 10, 10, 1);
    b.send(nbd.CMD_WRITE, 9, 1000, 10, 2);
    scheduler.queued(a.queue);
    scheduler.queued(b.queue);
    await until(() => log.length === 5);
    assert.deepEqual(calls, ['writeMany', 'writeMany']);
    assert.deepEqual(log.slice(0, 3).sort(), ['a 0 done', 'a 1 done', 'b 9 done']);
    volume.close();
  });

  test('a failing volume answers NBD_EIO to every request of the batch', async () => {
    const { volume, scheduler, log, lines, client } = setup();
    const a = client('a');
    a.send(nbd.CMD_WRITE, 1, 0, 10, 1);
    a.send(nbd.CMD_WRITE, 2, 4096, 10, 1);
    volume.close();
    scheduler.queued(a.queue);
    await until(() => log.length === 2);
    assert.ok(
      log.every((line) => / error \d+$/.test(line) && !line.endsWith(' error 0')),
      log.join('\n'),
    );
    assert.deepEqual(lines.length, 1, 'one log line for the batch');
    assert.match(lines[0]!, /and 1 more request\(s\) of the batch/);
  });

  test('a closed connection: its queued requests are dropped unanswered', async () => {
    const { volume, calls, scheduler, log, client } = setup();
    const a = client('a');
    a.send(nbd.CMD_WRITE, 1, 0, 10, 1);
    a.open = false;
    scheduler.queued(a.queue);
    await until(() => a.queue.length === 0);
    assert.deepEqual([log, calls], [[], []]);
    volume.close();
  });
});

describe('cycle slices between client batches', () => {
  test('a cycle progresses while a client keeps the queue full, and gets as much time as the client batches, no more', async () => {
    // A clock of our own: each client batch (one writeMany) takes 1 ms, each slice 10 ms.
    let clockMs = 0;
    const cycles = { isRunning: true, step: () => {} };
    const { volume, calls, scheduler: _unused, log, client } = setup();
    const engine = new Engine(volume, { payloadMax: 65536, chunkBytes: 8192, log: () => {} });
    const scheduler = new BatchScheduler(engine, cycles, 64, () => clockMs);
    const batchesAtSlices: number[] = [];
    cycles.step = () => {
      batchesAtSlices.push(calls.filter((call) => call === 'writeMany').length);
      clockMs += 10;
      if (batchesAtSlices.length === 20) cycles.isRunning = false;
    };
    const original = volume.writeMany.bind(volume);
    volume.writeMany = (writes) => {
      clockMs += 1;
      original(writes);
    };
    const a = client('a');
    let sent = 0;
    const refill = (): void => {
      while (a.queue.length < 4) a.send(nbd.CMD_WRITE, sent++, (sent % 16) * 4096, 4096, 1);
      scheduler.queued(a.queue);
    };
    scheduler.wake();
    await until(() => {
      refill();
      return !cycles.isRunning;
    });
    assert.equal(batchesAtSlices.length, 20, 'the cycle completed while the client saturated');
    // The first slice at once (no slice has cost anything yet); after it, each slice
    // once the client batches since the last one took its 10 ms: ten batches apart.
    const gaps = batchesAtSlices.slice(2).map((at, index) => at - batchesAtSlices[index + 1]!);
    assert.deepEqual(gaps, Array(gaps.length).fill(10), `batches at slices ${batchesAtSlices.join(',')}`);
    assert.ok(log.length > 0);
    volume.close();
  });
});
