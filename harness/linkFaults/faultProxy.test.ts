// The fault proxy in front of nbdkit file, driven by the tests' NBD client: each
// fault does to the far side what the crash model of faultProxy.ts says, and no more.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { missing } from '../../impl/nbd/nbdTestTools.ts';
import { EIO, ENOSPC } from '../../impl/nbd/protocol.ts';
import { type NbdReplyError, NbdTestClient } from '../../impl/nbd/testClient.ts';
import { FarSide } from './farSide.ts';
import { FaultProxy, snapshotNames } from './faultProxy.ts';
import { nbdkitFileFarSide } from './nbdkitFarSide.ts';
import { Prng } from '../prng.ts';
import type { Fault } from './schedule.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-linkfaults-'));
after(() => rmSync(root, { recursive: true, force: true }));
const skip = missing('nbdkit');
const exportSize = 64 * 1024;
let runs = 0;

/** A proxy (a Unix socket, or TCP on `port`) in front of a fresh nbdkit file, with `faults`; stopped after the test. */
async function proxyWith(faults: Fault[], t: { after: (body: () => Promise<void>) => void }, port?: number) {
  const dir = join(root, `p${runs++}`);
  mkdirSync(dir);
  const spec = nbdkitFileFarSide(dir, exportSize);
  const far = new FarSide(spec);
  const listenPath = join(dir, 'proxy.sock');
  const listen = port === undefined ? ({ kind: 'unix', path: listenPath } as const) : ({ kind: 'tcp', port } as const);
  const proxy = new FaultProxy(far, listen, { seed: 0, faults });
  t.after(() => proxy.stop());
  await proxy.start();
  const image = () => readFileSync(spec.imagePath);
  const connect = () => NbdTestClient.connect(port === undefined ? { socketPath: listenPath } : { port });
  return { proxy, far, image, connect, spec };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

const bytesOf = (value: number, length = 4096) => Buffer.alloc(length, value);

test('without faults the proxy passes the handshake, writes, flushes and reads through', { skip }, async (t) => {
  const { proxy, image, connect } = await proxyWith([], t);
  const client = await connect();
  assert.equal(client.sizeBytes, exportSize);
  await client.write(8192, bytesOf(7));
  await client.flush();
  assert.deepEqual(await client.read(8192, 4096), bytesOf(7));
  await client.disconnect();
  assert.deepEqual(image().subarray(8192, 12288), bytesOf(7));
  assert.equal(proxy.counts.requests.WRITE, 1);
  assert.equal(proxy.counts.requests.FLUSH, 1);
  assert.equal(proxy.counts.durableFlushes, 1);
  assert.equal(proxy.counts.opaqueConnections, 0);
});

test('over TCP: an error reply on a FLUSH reaches the client, and the next FLUSH goes through', { skip }, async (t) => {
  const faults: Fault[] = [{ kind: 'errorReply', at: { command: 'FLUSH', index: 0 }, errno: EIO, forwarded: false }];
  const { proxy, image, connect } = await proxyWith(faults, t, await freePort());
  const client = await connect();
  await client.write(0, bytesOf(5));
  await assert.rejects(client.flush(), (error: NbdReplyError) => error.errno === EIO);
  await client.flush();
  await client.disconnect();
  assert.deepEqual(image().subarray(0, 4096), bytesOf(5));
  assert.equal(proxy.counts.durableFlushes, 1, 'only the FLUSH that reached the far side made a durable snapshot');
});

test('an error reply: forwarded, the write landed; not forwarded, it did not', { skip }, async (t) => {
  const faults: Fault[] = [
    { kind: 'errorReply', at: { command: 'WRITE', index: 0 }, errno: EIO, forwarded: true },
    { kind: 'errorReply', at: { command: 'WRITE', index: 1 }, errno: ENOSPC, forwarded: false },
  ];
  const { proxy, image, connect } = await proxyWith(faults, t);
  const client = await connect();
  await assert.rejects(client.write(0, bytesOf(1)), (error: NbdReplyError) => error.errno === EIO);
  await assert.rejects(client.write(4096, bytesOf(2)), (error: NbdReplyError) => error.errno === ENOSPC);
  await client.flush();
  await client.disconnect();
  assert.deepEqual(image().subarray(0, 4096), bytesOf(1), 'the forwarded write was performed');
  assert.deepEqual(image().subarray(4096, 8192), bytesOf(0), 'the answered write never reached the far side');
  assert.equal(proxy.counts.faults.errorReply, 2);
});

test('a drop in the middle of a WRITE payload ends the connection and the far side never has it', {
  skip,
}, async (t) => {
  const { proxy, image, connect } = await proxyWith(
    [{ kind: 'dropMidPayload', at: { command: 'WRITE', index: 0 } }],
    t,
  );
  const client = await connect();
  await assert.rejects(client.write(0, bytesOf(9, 16384)));
  await client.closed;
  const again = await connect();
  await again.flush();
  await again.disconnect();
  assert.deepEqual(image().subarray(0, 16384), bytesOf(0, 16384));
  assert.equal(proxy.counts.connections, 2);
});

test('a power loss takes the far side back to its last FLUSH; a mark and restoreOlder further back', {
  skip,
}, async (t) => {
  // Requests: WRITE a (0), FLUSH (1), WRITE b (2), FLUSH (3), WRITE c (4), READ (5) <- power loss,
  // then on a new connection: READ (6) <- restoreOlder to the mark taken at request 2 (after a, before b).
  const faults: Fault[] = [
    { kind: 'mark', at: { command: 'ANY', index: 2 } },
    { kind: 'powerLoss', at: { command: 'ANY', index: 5 } },
    { kind: 'restoreOlder', at: { command: 'ANY', index: 6 } },
  ];
  const { proxy, image, connect } = await proxyWith(faults, t);
  const client = await connect();
  await client.write(0, bytesOf(1));
  await client.flush();
  await client.write(4096, bytesOf(2));
  await client.flush();
  await client.write(8192, bytesOf(3));
  await assert.rejects(client.read(0, 4096));
  const second = await connect();
  assert.deepEqual(image().subarray(0, 12288), Buffer.concat([bytesOf(1), bytesOf(2), bytesOf(0)]));
  await assert.rejects(second.read(0, 4096));
  const third = await connect();
  assert.deepEqual(await third.read(0, 12288), Buffer.concat([bytesOf(1), bytesOf(0), bytesOf(0)]));
  await third.disconnect();
  assert.deepEqual(proxy.counts.faults.powerLoss, 1);
  assert.deepEqual(proxy.counts.faults.restoreOlder, 1);
  assert.equal(proxy.counts.farSideStarts, 3);
  assert.ok(snapshotNames.durable);
});

test('a torn power loss keeps a seeded share of the writes since the last FLUSH', { skip }, async (t) => {
  const keepSeed = Number(process.env.COWMAP_SEED ?? Date.now() % 1_000_000);
  t.diagnostic(`keepSeed ${keepSeed} (COWMAP_SEED=${keepSeed} repeats it)`);
  // Requests: WRITE (0), FLUSH (1), then 8 WRITEs (2..9), then a READ (10) <- the torn power loss.
  const { image, connect } = await proxyWith(
    [{ kind: 'tornPowerLoss', at: { command: 'ANY', index: 10 }, keepSeed }],
    t,
  );
  const client = await connect();
  await client.write(0, bytesOf(1));
  await client.flush();
  for (let index = 1; index <= 8; index++) await client.write(index * 4096, bytesOf(index + 1));
  await assert.rejects(client.read(0, 4096));
  const again = await connect();
  await again.disconnect();
  const coin = new Prng(keepSeed);
  const expected = [
    bytesOf(1),
    ...Array.from({ length: 8 }, (_, index) => (coin.nextBool() ? bytesOf(index + 2) : bytesOf(0))),
  ];
  assert.deepEqual(image().subarray(0, 9 * 4096), Buffer.concat(expected));
});

test('refuse: the connection drops and connects fail until the window ends', { skip }, async (t) => {
  const { proxy, connect } = await proxyWith(
    [{ kind: 'refuse', at: { command: 'FLUSH', index: 0 }, durationMs: 300 }],
    t,
  );
  const client = await connect();
  await assert.rejects(client.flush());
  await assert.rejects(connect(), 'a connect inside the window is refused');
  await new Promise((resolve) => setTimeout(resolve, 400));
  const again = await connect();
  await again.flush();
  await again.disconnect();
  assert.equal(proxy.counts.faults.refuse, 1);
});

test('a delayed reply holds the replies behind it', { skip }, async (t) => {
  const { proxy, connect } = await proxyWith(
    [{ kind: 'delay', at: { command: 'ANY', index: 0 }, count: 1, delayMs: 150 }],
    t,
  );
  const client = await connect();
  const order: string[] = [];
  await Promise.all([
    client.write(0, bytesOf(4)).then(() => order.push('write')),
    client.flush().then(() => order.push('flush')),
  ]);
  // The FLUSH's reply waits behind the held WRITE reply on the same connection.
  assert.deepEqual(order, ['write', 'flush']);
  assert.equal(proxy.counts.faults.delay, 1);
  await client.disconnect();
});
