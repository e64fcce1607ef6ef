// The server's limits over real sockets (docs/nbd.md, "Limits"): the connection
// limit, the handshake and request timeouts, the one buffer cap with backpressure
// (a client that does not read its replies), DISC after outstanding requests, and
// a cap that cannot hold one largest request refused at construction.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { requestShareBytes } from './bufferBudget.ts';
import * as nbd from './protocol.ts';
import { NbdServer, type NbdServerOptions } from './server.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-limits-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** A client that reads only when asked (so that its replies can pile up). */
class Client {
  readonly socket: Socket;
  private received: Buffer[] = [];
  private receivedBytes = 0;
  private wake: (() => void) | null = null;
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.receivedBytes += chunk.length;
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new Client(socket)));
      socket.once('error', reject);
    });
  }

  async read(count: number): Promise<Buffer> {
    while (this.receivedBytes < count) {
      if (this.closed) throw new Error(`closed with ${this.receivedBytes} of ${count} bytes`);
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const all = Buffer.concat(this.received);
    this.received = [all.subarray(count)];
    this.receivedBytes -= count;
    return all.subarray(0, count);
  }

  async waitClosed(): Promise<void> {
    while (!this.closed) await new Promise<void>((resolve) => (this.wake = resolve));
  }

  /** The handshake up to the transmission phase (NBD_OPT_GO of the default export). */
  async go(): Promise<void> {
    await this.read(18);
    const option = Buffer.alloc(4 + 16 + 6);
    option.writeUInt32BE(nbd.FLAG_C_FIXED_NEWSTYLE | nbd.FLAG_C_NO_ZEROES, 0);
    option.writeBigUInt64BE(nbd.IHAVEOPT, 4);
    option.writeUInt32BE(nbd.OPT_GO, 12);
    option.writeUInt32BE(6, 16); // name length 0, no info requests
    this.socket.write(option);
    for (;;) {
      const header = await this.read(20);
      await this.read(header.readUInt32BE(16));
      if (header.readUInt32BE(12) === nbd.REP_ACK) return;
    }
  }

  request(type: number, cookie: number, offset: number, length: number, payload?: Buffer): void {
    const header = nbd.encodeRequest({ type, offset, length, cookie: BigInt(cookie) });
    this.socket.write(payload === undefined ? header : Buffer.concat([header, payload]));
  }

  /** A simple reply; its data when `dataLength` > 0 and no error. */
  async reply(dataLength = 0): Promise<{ error: number; cookie: number }> {
    const header = await this.read(16);
    const error = header.readUInt32BE(4);
    if (error === 0 && dataLength > 0) await this.read(dataLength);
    return { error, cookie: Number(header.readBigUInt64BE(8)) };
  }
}

async function withServer(
  options: NbdServerOptions,
  body: (server: NbdServer, port: number, lines: string[]) => Promise<void>,
): Promise<void> {
  const volume = ReplicatedVolume.create(new NodeStorage(), join(root, `v${dirs++}`), {
    regions: 16,
    regionSize: 65536,
  });
  const lines: string[] = [];
  const server = new NbdServer(volume, { log: (line) => lines.push(line), statusFile: false, ...options });
  const port = (await server.listen({ port: 0 })) as number;
  try {
    await body(server, port, lines);
  } finally {
    await server.close();
    volume.close();
  }
}

const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('limits', () => {
  test('connections over the limit are closed at once, and logged', async () => {
    await withServer({ connectionsMax: 2 }, async (server, port, lines) => {
      const kept = [await Client.open(port), await Client.open(port)];
      for (const client of kept) await client.go();
      const refused = await Client.open(port);
      await refused.waitClosed();
      assert.ok(
        lines.some((line) => line.includes('refusing a connection: 2 open, the limit is 2')),
        lines.join('\n'),
      );
      assert.equal(server.connectionCount, 2);
      kept[0]!.request(nbd.CMD_FLUSH, 1, 0, 0);
      assert.equal((await kept[0]!.reply()).error, 0, 'the kept connections serve on');
      for (const client of kept) client.socket.destroy();
    });
  });

  test('a connection silent in the handshake, and one stalled in a payload, are closed; the stalled one frees its reservation', async () => {
    await withServer({ handshakeTimeoutSeconds: 0.2, requestTimeoutSeconds: 0.2 }, async (server, port, lines) => {
      const silent = await Client.open(port);
      const stalled = await Client.open(port);
      await stalled.go();
      stalled.request(nbd.CMD_WRITE, 1, 0, 4096, Buffer.alloc(100, 1)); // 100 of 4096 payload bytes
      await settle(50);
      assert.equal(server.budget.usedBytes, 4096 + requestShareBytes, 'the payload is reserved before it is read');
      await silent.waitClosed();
      await stalled.waitClosed();
      assert.ok(
        lines.some((line) => line.includes('still in the handshake after 0.2 s')),
        lines.join('\n'),
      );
      assert.ok(
        lines.some((line) => line.includes('no byte of a request payload for 0.2 s')),
        lines.join('\n'),
      );
      assert.equal(server.budget.usedBytes, 0);
    });
  });

  test('the buffer cap: a client that does not read its replies is not read either, then catches up', async () => {
    const readBytes = 16384;
    const cap = 4 * (readBytes + requestShareBytes);
    await withServer({ payloadMax: readBytes, bufferBytesMax: cap }, async (server, port) => {
      const client = await Client.open(port);
      await client.go();
      client.socket.pause(); // the kernel buffers fill, then the server's writes queue, then its reads stop
      const count = 2000; // 32 MiB of replies: more than the kernel buffers on both sides
      for (let cookie = 0; cookie < count; cookie++)
        client.request(nbd.CMD_READ, cookie, (cookie % 64) * readBytes, readBytes);
      let waited = false;
      for (let attempt = 0; attempt < 100 && !waited; attempt++) {
        await settle(20);
        assert.ok(server.budget.usedBytes <= cap, `${server.budget.usedBytes} bytes held, cap ${cap}`);
        waited = server.budget.waiting > 0;
      }
      assert.ok(waited, 'a connection waits for the budget');
      client.socket.resume();
      const cookies = new Set<number>();
      for (let index = 0; index < count; index++) {
        const reply = await client.reply(readBytes);
        assert.equal(reply.error, 0);
        cookies.add(reply.cookie);
        assert.ok(server.budget.usedBytes <= cap);
      }
      assert.equal(cookies.size, count, 'every READ answered once');
      await settle(20);
      assert.equal(server.budget.usedBytes, 0, 'every reservation released');
      client.socket.destroy();
    });
  });

  test('a client that never reads its replies is cut off after the request timeout, its reservations freed', async () => {
    const readBytes = 16384;
    const cap = 4 * (readBytes + requestShareBytes);
    const options = { payloadMax: readBytes, bufferBytesMax: cap, requestTimeoutSeconds: 0.3 };
    await withServer(options, async (server, port, lines) => {
      const hog = await Client.open(port);
      await hog.go();
      hog.socket.pause(); // it never reads again: its replies fill the kernel's buffers, then the cap
      for (let cookie = 0; cookie < 2000; cookie++)
        hog.request(nbd.CMD_READ, cookie, (cookie % 64) * readBytes, readBytes);
      const cutOff = (): boolean => lines.some((line) => line.includes('its replies were not read for 0.3 s'));
      for (let attempt = 0; attempt < 100 && !cutOff(); attempt++) await settle(20);
      assert.ok(cutOff(), lines.join('\n'));
      await settle(20);
      assert.equal(server.budget.usedBytes, 0, 'its reservations went back');
      const other = await Client.open(port);
      await other.go();
      other.request(nbd.CMD_READ, 1, 0, readBytes);
      assert.equal((await other.reply(readBytes)).error, 0, 'the server serves on');
      other.socket.destroy();
      hog.socket.destroy();
    });
  });

  test('DISC after outstanding requests: they are answered, then the connection closes', async () => {
    await withServer({}, async (_server, port) => {
      const client = await Client.open(port);
      await client.go();
      client.request(nbd.CMD_WRITE, 1, 0, 4096, Buffer.alloc(4096, 3));
      client.request(nbd.CMD_READ, 2, 0, 4096);
      client.request(nbd.CMD_DISC, 3, 0, 0);
      assert.deepEqual(await client.reply(), { error: 0, cookie: 1 });
      assert.deepEqual(await client.reply(4096), { error: 0, cookie: 2 });
      await client.waitClosed();
    });
  });

  test('a cap that cannot hold one largest request is refused', () => {
    const volume = ReplicatedVolume.create(new NodeStorage(), join(root, `v${dirs++}`), {
      regions: 4,
      regionSize: 4096,
    });
    assert.throws(
      () => new NbdServer(volume, { payloadMax: 4096, bufferBytesMax: 4096 }),
      /bufferBytesMax 4096 is below/,
    );
    volume.close();
  });
});
