// The NBD export (impl/nbd/server.ts) with a raw client: the handshake's options,
// the commands and their errors, bad clients, cycles between requests, a Unix
// socket. End to end with real clients: nbdEndToEnd.test.ts and nbdServeKill.test.ts.

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { createVolume, freshDir, root } from './nbdTestTools.ts';
import * as nbd from './protocol.ts';
import { RawClient } from './rawClient.ts';
import { type CycleReport, NbdServer } from './server.ts';

async function withServer(
  body: (server: NbdServer, port: number, volume: ReplicatedVolume, lines: string[]) => Promise<void>,
  options: { regions?: number; regionSize?: number; payloadMax?: number } = {},
): Promise<void> {
  const volume = createVolume(options.regions ?? 8, options.regionSize ?? 4096);
  const lines: string[] = [];
  const server = new NbdServer(volume, {
    log: (line) => lines.push(line),
    exportName: 'vol',
    batchRegions: 2,
    ...(options.payloadMax === undefined ? {} : { payloadMax: options.payloadMax }),
  });
  const port = (await server.listen({ port: 0 })) as number;
  try {
    await body(server, port, volume, lines);
  } finally {
    await server.close();
    volume.close();
  }
}

describe('NBD protocol (raw client)', () => {
  test('GO, WRITE at odd offsets, READ, FLUSH with FUA, WRITE_ZEROES, TRIM, DISC', async () => {
    await withServer(async (_server, port, volume) => {
      const client = await RawClient.open(port);
      assert.equal(await client.go(), BigInt(8 * 4096));
      const data = Buffer.alloc(5000, 0x5a);
      client.request(nbd.CMD_WRITE, 1000, data.length, data, 1n, nbd.CMD_FLAG_FUA);
      client.request(nbd.CMD_READ, 999, 5002, undefined, 2n);
      client.request(nbd.CMD_FLUSH, 0, 0, undefined, 3n);
      const write = await client.reply();
      assert.deepEqual([write.error, write.cookie], [0, 1n]);
      const read = await client.reply(5002);
      assert.deepEqual([read.error, read.cookie], [0, 2n]);
      assert.equal(read.data[0], 0);
      assert.ok(read.data.subarray(1, 5001).equals(data));
      assert.equal(read.data[5001], 0);
      assert.deepEqual((await client.reply()).cookie, 3n);
      assert.ok(Buffer.from(volume.read(1000, 5000)).equals(data));
      client.request(nbd.CMD_WRITE_ZEROES, 1500, 100, undefined, 4n);
      client.request(nbd.CMD_TRIM, 2000, 100, undefined, 5n);
      assert.equal((await client.reply()).error, 0);
      assert.equal((await client.reply()).error, 0);
      assert.ok(Buffer.from(volume.read(1500, 100)).equals(Buffer.alloc(100)));
      assert.ok(Buffer.from(volume.read(2000, 100)).equals(Buffer.alloc(100)));
      client.request(nbd.CMD_DISC, 0, 0);
      await client.waitClosed();
    });
  });

  test('errors: past the end, unknown command and flag, too large; the connection lives on', async () => {
    await withServer(
      async (_server, port) => {
        const client = await RawClient.open(port);
        await client.go();
        client.request(nbd.CMD_WRITE, 8 * 4096 - 10, 20, Buffer.alloc(20, 1), 1n);
        assert.equal((await client.reply()).error, nbd.ENOSPC);
        client.request(nbd.CMD_WRITE_ZEROES, 8 * 4096, 1, undefined, 2n);
        assert.equal((await client.reply()).error, nbd.ENOSPC);
        client.request(nbd.CMD_READ, 8 * 4096, 1, undefined, 3n);
        assert.equal((await client.reply()).error, nbd.EINVAL);
        client.request(nbd.CMD_TRIM, 2 ** 60, 1, undefined, 4n);
        assert.equal((await client.reply()).error, nbd.EINVAL);
        client.request(99, 0, 0, undefined, 5n);
        assert.equal((await client.reply()).error, nbd.EINVAL);
        client.request(nbd.CMD_READ, 0, 10, undefined, 6n, 0x80);
        assert.equal((await client.reply()).error, nbd.EINVAL);
        client.request(nbd.CMD_WRITE, 0, 9000, Buffer.alloc(9000, 2), 7n);
        assert.equal((await client.reply()).error, nbd.EINVAL);
        client.request(nbd.CMD_READ, 0, 9000, undefined, 8n);
        assert.equal((await client.reply()).error, nbd.EINVAL);
        client.request(nbd.CMD_READ, 0, 4, undefined, 9n);
        const read = await client.reply(4);
        assert.deepEqual([read.error, read.cookie, [...read.data]], [0, 9n, [0, 0, 0, 0]]);
        client.request(nbd.CMD_READ, 0, 4, undefined, 10n, 0, 0x12345678);
        await client.waitClosed();
      },
      { payloadMax: 8192 },
    );
  });

  test('options: LIST, INFO with block sizes, unknown option, malformed GO, unknown export, ABORT', async () => {
    await withServer(async (_server, port) => {
      const client = await RawClient.open(port);
      await client.greeting(nbd.FLAG_C_FIXED_NEWSTYLE);
      client.option(nbd.OPT_LIST);
      const server = await client.optionReply();
      assert.equal(server.type, nbd.REP_SERVER);
      assert.equal(server.data.subarray(4).toString(), 'vol');
      assert.equal((await client.optionReply()).type, nbd.REP_ACK);
      client.option(nbd.OPT_LIST, Buffer.alloc(1));
      assert.equal((await client.optionReply()).type, nbd.REP_ERR_INVALID);
      client.option(nbd.OPT_INFO, client.goData('vol', [nbd.INFO_BLOCK_SIZE]));
      const info = await client.optionReply();
      assert.equal(info.type, nbd.REP_INFO);
      const blockSize = await client.optionReply();
      assert.equal(blockSize.data.readUInt16BE(0), nbd.INFO_BLOCK_SIZE);
      assert.equal((await client.optionReply()).type, nbd.REP_ACK);
      client.option(99); // no such option (8, STRUCTURED_REPLY, is served now)
      assert.equal((await client.optionReply()).type, nbd.REP_ERR_UNSUP);
      client.option(nbd.OPT_GO, Buffer.from([0, 0, 0, 9, 1]));
      assert.equal((await client.optionReply()).type, nbd.REP_ERR_INVALID);
      client.option(nbd.OPT_GO, Buffer.from([0, 0, 0, 9, 1, 2]));
      assert.equal((await client.optionReply()).type, nbd.REP_ERR_INVALID);
      client.option(nbd.OPT_GO, Buffer.concat([client.goData('vol'), Buffer.alloc(1)]));
      assert.equal((await client.optionReply()).type, nbd.REP_ERR_INVALID);
      client.option(nbd.OPT_GO, client.goData('other'));
      assert.equal((await client.optionReply()).type, nbd.REP_ERR_UNKNOWN);
      client.option(nbd.OPT_ABORT);
      assert.equal((await client.optionReply()).type, nbd.REP_ACK);
      await client.waitClosed();
    });
  });

  test('EXPORT_NAME with and without zeroes; bad handshakes close only their connection', async () => {
    await withServer(async (_server, port, volume, lines) => {
      for (const [flags, replyLength] of [
        [nbd.FLAG_C_FIXED_NEWSTYLE | nbd.FLAG_C_NO_ZEROES, 10],
        [nbd.FLAG_C_FIXED_NEWSTYLE, 134],
      ] as const) {
        const client = await RawClient.open(port);
        await client.greeting(flags);
        client.option(nbd.OPT_EXPORT_NAME, Buffer.from('vol'));
        const reply = await client.read(replyLength);
        assert.equal(reply.readBigUInt64BE(0), BigInt(volume.sizeBytes));
        client.request(nbd.CMD_FLUSH, 0, 0, undefined, 1n);
        assert.equal((await client.reply()).error, 0);
        client.socket.destroy();
      }
      const bad: ((client: RawClient) => void)[] = [
        (client) => client.option(nbd.OPT_EXPORT_NAME, Buffer.from('nope')),
        (client) => client.write(Buffer.alloc(16, 0x41)),
        (client) => client.option(nbd.OPT_GO, Buffer.alloc(70000)),
      ];
      for (const send of bad) {
        const client = await RawClient.open(port);
        await client.greeting();
        send(client);
        await client.waitClosed();
      }
      const unknownFlags = await RawClient.open(port);
      await unknownFlags.greeting(0x80);
      await unknownFlags.waitClosed();
      // Dropped in the middle of a write: nothing is written, the server serves on.
      const dropper = await RawClient.open(port);
      await dropper.go();
      dropper.request(nbd.CMD_WRITE, 0, 4096, Buffer.alloc(100, 9));
      dropper.socket.destroy();
      const client = await RawClient.open(port);
      await client.go();
      client.request(nbd.CMD_READ, 0, 4096, undefined, 1n);
      assert.ok((await client.reply(4096)).data.equals(Buffer.alloc(4096)));
      client.socket.destroy();
      assert.ok(lines.some((line) => line.includes('closing a connection')));
    });
  });

  test('cycles between requests: batches, on demand, a request during a cycle, resume, a failed cycle', async () => {
    await withServer(
      async (server, port, volume) => {
        const client = await RawClient.open(port);
        await client.go();
        for (let region = 0; region < 8; region++) {
          client.request(nbd.CMD_WRITE, region * 512, 512, Buffer.alloc(512, region + 1), BigInt(region));
          assert.equal((await client.reply()).error, 0);
        }
        server.requestCycle();
        server.requestCycle(); // during the first: one more right after
        assert.ok(server.cycleRunning);
        client.request(nbd.CMD_WRITE, 0, 512, Buffer.alloc(512, 0xee), 99n); // COW during the cycle
        assert.equal((await client.reply()).error, 0);
        await server.whenIdle();
        assert.equal(server.cyclesCompleted, 2);
        assert.ok(Buffer.from(volume.read(0, 512, 'secondary')).equals(Buffer.alloc(512, 0xee)));
        assert.ok(Buffer.from(volume.read(7 * 512, 512, 'secondary')).equals(Buffer.alloc(512, 8)));
        assert.equal(server.resumeInterruptedCycle(), false);
        client.socket.destroy();
      },
      { regions: 8, regionSize: 512 },
    );
    // An interrupted cycle: the volume reopened while replicating resumes it.
    const dir = freshDir();
    const volume = ReplicatedVolume.create(new NodeStorage(), dir, { regions: 4, regionSize: 512 });
    volume.write(0, new Uint8Array(2048).fill(3));
    volume.startCycle();
    volume.transfer(0);
    volume.close();
    const reopened = ReplicatedVolume.open(new NodeStorage(), dir);
    const reports: CycleReport[] = [];
    const lines: string[] = [];
    const server = new NbdServer(reopened, {
      log: (line) => lines.push(line),
      onCycle: (report) => reports.push(report),
    });
    assert.equal(server.resumeInterruptedCycle(), true);
    await server.whenIdle();
    assert.deepEqual([reports[0]!.resumed, reports[0]!.regions], [true, 4]);
    assert.ok(Buffer.from(reopened.read(0, 2048, 'secondary')).equals(Buffer.alloc(2048, 3)));
    // A cycle that fails (the volume closed under it) stops cycles and says why.
    reopened.close();
    server.requestCycle();
    await server.whenIdle();
    assert.notEqual(server.failure, null);
    server.requestCycle();
    assert.ok(lines.some((line) => line.startsWith('cycle: stopped')));
  });

  test('a Unix socket, and a failed volume call answers EIO', async () => {
    const volume = createVolume(4, 512);
    const server = new NbdServer(volume, { log: () => {} });
    const path = join(root, 'nbd.sock');
    assert.equal(await server.listen({ socketPath: path }), path);
    const socket = await new Promise<Socket>((resolve) => {
      const s = connect(path, () => resolve(s));
    });
    const client = new RawClient(socket);
    await client.go();
    volume.close();
    client.request(nbd.CMD_WRITE, 0, 4, Buffer.alloc(4, 1), 1n);
    assert.notEqual((await client.reply()).error, 0);
    socket.destroy();
    await server.close();
  });
});
