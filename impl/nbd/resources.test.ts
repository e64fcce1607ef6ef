// The NBD server's resources under hostile or heavy clients, with small limits so
// that the tests are quick: a huge WRITE_ZEROES yields to another client's READ,
// stalled maximal WRITEs keep the memory bounded by the buffer cap, and the
// connection, handshake and payload limits. No assertion on a duration: latencies
// are printed, and what is asserted is an order of events or a count.

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import * as nbd from './protocol.ts';
import { NbdServer, type NbdServerOptions } from './server.ts';
import { startServeChild } from './serveChild.ts';
import { NbdTestClient, openSocket } from './testClient.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-nbd-resources-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
function freshDir(): string {
  return join(root, `v${dirs++}`);
}

const mebibyte = 1 << 20;
const regionSize = 65536;

async function withServer(
  regions: number,
  options: NbdServerOptions,
  body: (server: NbdServer, port: number, volume: ReplicatedVolume, lines: string[]) => Promise<void>,
): Promise<void> {
  const volume = ReplicatedVolume.create(new NodeStorage(), freshDir(), { regions, regionSize });
  const lines: string[] = [];
  const server = new NbdServer(volume, { log: (line) => lines.push(line), statusFile: false, ...options });
  const port = (await server.listen({ port: 0 })) as number;
  try {
    await body(server, port, volume, lines);
  } finally {
    await server.close();
    await server.whenIdle();
    volume.close();
  }
}

/** Resolves when the socket closes; the test's own timeout bounds the wait. */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once('close', () => resolve());
  });
}

describe('a 64 MiB WRITE_ZEROES during a cycle', { timeout: 120_000 }, () => {
  test("another connection's 4 KiB READ is answered first, after a few chunks", async (t) => {
    const chunkBytes = mebibyte;
    const chunks = 64;
    await withServer(chunks * (chunkBytes / regionSize), { chunkBytes }, async (server, port, volume) => {
      // Every region dirty and not zero: the cycle has 64 MiB to send, a zeroed chunk shows.
      volume.writeMany([{ offset: 0, bytes: new Uint8Array(volume.sizeBytes).fill(0xff) }]);
      volume.flush();
      const zeroedChunks = (): number => {
        let count = 0;
        for (let chunk = 0; chunk < chunks; chunk++) if (volume.read(chunk * chunkBytes, 1)[0] === 0) count++;
        return count;
      };
      const zeroer = await NbdTestClient.connect({ port });
      const reader = await NbdTestClient.connect({ port });
      server.requestCycle();
      assert.equal(server.cycleRunning, true, 'the cycle runs');
      const started = performance.now();
      let zeroesAnsweredAt = 0;
      const zeroes = zeroer.writeZeroes(0, chunks * chunkBytes).then(() => (zeroesAnsweredAt = performance.now()));
      // The READ leaves once the server works on the WRITE_ZEROES (its first chunk done).
      while (zeroedChunks() === 0) await new Promise((resolve) => setImmediate(resolve));
      const chunksAtSend = zeroedChunks();
      const sentAt = performance.now();
      const read = await reader.read((chunks - 1) * chunkBytes, 4096);
      const readAt = performance.now();
      const chunksAtReply = zeroedChunks();
      const cycleAtReply = server.cycleRunning;
      const zeroesDone = zeroesAnsweredAt > 0;
      await zeroes;
      const chunkMs = (zeroesAnsweredAt - started) / chunks;
      const note =
        `READ answered in ${(readAt - sentAt).toFixed(1)} ms while the WRITE_ZEROES ran ${chunksAtReply - chunksAtSend} ` +
        `chunk(s) (${chunksAtSend} before it was sent); the WRITE_ZEROES took ${(zeroesAnsweredAt - started).toFixed(0)} ms, ` +
        `${chunkMs.toFixed(2)} ms a chunk, so 100 ms allows ${Math.floor(100 / chunkMs)} chunks; ` +
        `the cycle was ${cycleAtReply ? 'still' : 'no longer'} running at the READ's reply`;
      t.diagnostic(note);
      process.stderr.write(`# ${note}\n`);
      assert.equal(zeroesDone, false, 'the READ was answered before the WRITE_ZEROES');
      assert.equal(read[0], 0xff, 'the READ of the last chunk came before that chunk ran');
      // One chunk per batch: the READ rides in the next batch, beside at most a chunk and a cycle slice.
      assert.ok(
        chunksAtReply - chunksAtSend <= 3,
        `${chunksAtReply - chunksAtSend} chunks ran before the READ's reply`,
      );
      assert.ok(Buffer.from(volume.read(0, volume.sizeBytes)).equals(Buffer.alloc(volume.sizeBytes)));
      await zeroer.disconnect();
      await reader.disconnect();
    });
  });
});

/** The resident set of process `pid`, in bytes (Linux /proc). */
function residentBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match !== null, `no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** A socket past the handshake that sends a maximal WRITE's header and `sentBytes` of its payload, then stalls. */
async function stalledWrite(socketPath: string, payloadMax: number, sentBytes: number): Promise<NbdTestClient> {
  const client = await NbdTestClient.connect({ socketPath });
  client.socket.write(nbd.encodeRequest({ type: nbd.CMD_WRITE, offset: 0, length: payloadMax, cookie: 1n }));
  client.socket.write(Buffer.alloc(sentBytes, 0x5a));
  return client;
}

describe('50 clients stalled in maximal WRITEs', { timeout: 120_000 }, () => {
  test('the server grows by less than bufferBytesMax + 64 MiB, and a 51st client is answered', async (t) => {
    const bufferBytesMax = 64 * mebibyte;
    const payloadMax = 32 * mebibyte;
    const dir = freshDir();
    ReplicatedVolume.create(new NodeStorage(), dir, { regions: 1024, regionSize }).close(); // 64 MiB
    const socketPath = join(root, 'stalled.sock');
    const server = startServeChild([
      dir,
      '--socket',
      socketPath,
      '--buffer-bytes',
      `${bufferBytesMax}`,
      '--max-request-bytes',
      `${payloadMax}`,
      '--request-timeout',
      '2',
    ]);
    const clients: NbdTestClient[] = [];
    try {
      await server.waitFor(/^serving /);
      const before = residentBytes(server.pid);
      for (let index = 0; index < 50; index++) clients.push(await stalledWrite(socketPath, payloadMax, 4 * mebibyte));
      let peak = before;
      for (let sample = 0; sample < 15; sample++) {
        await sleep(100);
        peak = Math.max(peak, residentBytes(server.pid));
      }
      const connectAt = performance.now();
      const reader = await NbdTestClient.connect({ socketPath });
      const readSentAt = performance.now();
      const read = await reader.read(0, 4096);
      const readMs = performance.now() - readSentAt;
      const handshakeMs = readSentAt - connectAt;
      peak = Math.max(peak, residentBytes(server.pid));
      const growth = peak - before;
      const inMiB = (bytes: number): string => `${(bytes / mebibyte).toFixed(0)} MiB`;
      const note =
        `RSS ${inMiB(before)} before, peak ${inMiB(peak)} (growth ${inMiB(growth)}, bound ${inMiB(bufferBytesMax + 64 * mebibyte)}); ` +
        `the 51st client's handshake took ${handshakeMs.toFixed(0)} ms, its READ ${readMs.toFixed(0)} ms`;
      t.diagnostic(note);
      process.stderr.write(`# ${note}\n`);
      assert.equal(read.length, 4096);
      assert.ok(growth < bufferBytesMax + 64 * mebibyte, note);
      reader.destroy();
    } finally {
      for (const client of clients) client.destroy();
      await server.stop();
    }
  });
});

describe('limits', { timeout: 60_000 }, () => {
  test('the connection limit: the connection over it is closed, the others still work', async () => {
    await withServer(4, { connectionsMax: 2 }, async (_server, port, _volume, lines) => {
      const first = await NbdTestClient.connect({ port });
      const second = await NbdTestClient.connect({ port });
      const third = await openSocket({ port });
      third.on('error', () => {});
      await closed(third);
      assert.equal((await first.read(0, 512)).length, 512);
      assert.equal((await second.read(512, 512)).length, 512);
      assert.ok(
        lines.some((line) => /refusing a connection/.test(line)),
        lines.join('\n'),
      );
      await first.disconnect();
      await second.disconnect();
    });
  });

  test('the handshake timeout: a connection that never finishes the handshake is closed', async () => {
    await withServer(4, { handshakeTimeoutSeconds: 0.3 }, async (_server, port) => {
      const silent = await openSocket({ port });
      silent.on('error', () => {});
      silent.resume();
      await closed(silent);
      const client = await NbdTestClient.connect({ port });
      assert.equal((await client.read(0, 512)).length, 512);
      await client.disconnect();
    });
  });

  test('the payload limit: NBD_EINVAL, the payload skipped, the connection still works', async () => {
    const payloadMax = 64 * 1024;
    await withServer(4, { payloadMax }, async (_server, port, volume) => {
      const client = await NbdTestClient.connect({ port });
      const tooBig = new Uint8Array(payloadMax + 4096).fill(0x77);
      const refused = await client.request(nbd.CMD_WRITE, 0, tooBig.length, tooBig);
      assert.equal(refused.error, nbd.EINVAL);
      assert.equal((await client.request(nbd.CMD_READ, 0, payloadMax + 4096)).error, nbd.EINVAL);
      const bytes = new Uint8Array(4096).fill(0x33);
      await client.write(4096, bytes);
      assert.ok((await client.read(4096, 4096)).equals(bytes));
      assert.equal(volume.read(0, 1)[0], 0, 'the refused WRITE wrote nothing');
      await client.disconnect();
    });
  });
});
