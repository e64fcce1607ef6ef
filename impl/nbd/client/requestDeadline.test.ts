// When a request's reply is due (impl/nbd/client/transmission.ts; review item 3): its
// deadline starts when its bytes have left, so that a large payload on a link slower
// than one payload per requestTimeoutMs still completes; a server that takes no byte
// for requestTimeoutMs still fails the connection.

import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { testLevel } from '../../../harness/testLevel.ts';
import { isLinkError, tcpAddress, testClientOptions } from './clientTestKit.ts';
import { FakeNbdServer } from './fakeNbdServer.ts';
import { NbdClient } from './nbdClient.ts';

/** More than a loopback connection buffers, so that the link's rate shows. */
const payloadBytes = 24 * 1024 * 1024;
const requestTimeoutMs = 1500;
/** 24 MiB take about 3 s at this rate: twice requestTimeoutMs. */
const linkBytesPerSecond = 8 * 1024 * 1024;

/** `payloadBytes` of a pattern that differs with `seed`. */
function bigBytes(seed: number): Buffer {
  const bytes = Buffer.alloc(payloadBytes);
  for (let at = 0; at < payloadBytes; at += 4096) bytes.writeUInt32LE((at + seed) >>> 0, at);
  return bytes;
}

/**
 * A proxy to `port` that carries the client's bytes at `bytesPerSecond` (0: it stops
 * reading after the handshake's first 4 KiB); the replies pass freely.
 */
async function slowLink(port: number, bytesPerSecond: number): Promise<{ port: number; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    upstream.pipe(client);
    let carried = 0;
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      carried += chunk.length;
      client.pause();
      if (bytesPerSecond > 0) setTimeout(() => client.resume(), (chunk.length / bytesPerSecond) * 1000);
      else if (carried < 4096) client.resume();
    });
    for (const socket of [client, upstream]) socket.on('error', () => {});
  });
  server.on('close', () => {
    for (const socket of sockets) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

async function overSlowLink(bytesPerSecond: number, body: (client: NbdClient, fake: FakeNbdServer) => Promise<void>) {
  const fake = new FakeNbdServer({ exportSize: 32 * 1024 * 1024 });
  const link = await slowLink((await fake.listen()) as number, bytesPerSecond);
  const options = { ...testClientOptions, requestTimeoutMs, inFlightMax: 1 };
  try {
    const client = await NbdClient.connect(tcpAddress(link.port), options);
    try {
      await body(client, fake);
    } finally {
      client.destroy();
    }
  } finally {
    link.server.close();
    await fake.close();
  }
}

describe('request deadlines', () => {
  // Seconds of a throttled link: at the full level (make verify), make test's budget.
  const fullOnly = testLevel === 'full' ? false : 'at the full level (make verify)';
  test('a payload that a slow link carries for longer than requestTimeoutMs completes', {
    skip: fullOnly,
  }, async () => {
    await overSlowLink(linkBytesPerSecond, async (client, fake) => {
      const bytes = bigBytes(3);
      await client.write(0, bytes);
      assert.ok(fake.image.subarray(0, payloadBytes).equals(bytes));
    });
  });

  test('a link that takes no byte for requestTimeoutMs fails the request that could not leave', async () => {
    await overSlowLink(0, async (client) => {
      await assert.rejects(client.write(0, bigBytes(4)), isLinkError(/could not leave|no reply/));
    });
  });
});
