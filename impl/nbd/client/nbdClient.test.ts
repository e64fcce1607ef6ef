// NbdClient against the hand-framed fake server (fakeNbdServer.ts): the handshake in
// each form a server may take (NBD_OPT_GO, the NBD_OPT_EXPORT_NAME fallback, block
// sizes, refusals), the requests and how they are split, and the faults: error
// replies, replies out of order, the bound on requests in flight, a dropped
// connection, a stalled reply, replies that break the protocol, NBD_ESHUTDOWN.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isCowmapError } from '../../errors.ts';
import * as nbd from '../protocol.ts';
import { isLinkError, tcpAddress, testBytes, testClientOptions, until, withFake } from './clientTestKit.ts';
import { FakeNbdServer, fakeFlagsAll as fakeFlags } from './fakeNbdServer.ts';
import { NbdClient } from './nbdClient.ts';
import { NbdHandshakeError } from './nbdErrors.ts';
import { type NbdAddress, parseNbdUrl } from './nbdUrl.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-nbd-client-'));
after(() => rmSync(root, { recursive: true, force: true }));

const options = testClientOptions;
const tcp = tcpAddress;
const bytes = testBytes;

describe('handshake', () => {
  test('NBD_OPT_GO: fixed newstyle, no zeroes, the export and its block sizes', async () => {
    await withFake({ blockSize: [512, 4096, 65536], exportNames: ['vol'] }, async (server, client) => {
      assert.deepEqual(server.clientFlags, [nbd.FLAG_C_FIXED_NEWSTYLE | nbd.FLAG_C_NO_ZEROES]);
      assert.deepEqual(server.options, [nbd.OPT_GO]);
      assert.equal(client.exportSize, 1 << 20);
      assert.deepEqual(
        [client.canFlush, client.canFua, client.canWriteZeroes, client.readOnly],
        [true, true, true, false],
      );
      assert.equal(client.payloadMax, 65536);
      assert.equal(client.blockSizeMin, 512);
    });
  });

  test('NBD_REP_ERR_UNSUP to NBD_OPT_GO: NBD_OPT_EXPORT_NAME on the same connection, with the 124 zeroes', async () => {
    await withFake({ handshake: 'exportNameOnly', noZeroes: false, exportNames: ['vol'] }, async (server, client) => {
      assert.deepEqual(server.options, [nbd.OPT_GO, nbd.OPT_EXPORT_NAME]);
      assert.deepEqual(server.clientFlags, [nbd.FLAG_C_FIXED_NEWSTYLE]);
      assert.equal(client.payloadMax, 32 * 1024 * 1024);
      await client.write(4096, bytes(4096, 1));
      assert.deepEqual(Buffer.from(await client.read(4096, 4096)), bytes(4096, 1));
    });
  });

  test('a server that is not fixed newstyle: NBD_OPT_EXPORT_NAME at once', async () => {
    await withFake({ handshake: 'notFixed' }, async (server, client) => {
      assert.deepEqual(server.options, [nbd.OPT_EXPORT_NAME]);
      assert.deepEqual(server.clientFlags, [0]);
      assert.equal(client.exportSize, 1 << 20);
    });
  });

  test('an unknown export: NbdHandshakeError naming the URI, the export and the reply, after a soft disconnect', async () => {
    const server = new FakeNbdServer({ exportNames: ['vol'] });
    const port = (await server.listen()) as number;
    try {
      await assert.rejects(NbdClient.connect(tcp(port, 'other'), options), (error: unknown) => {
        assert.ok(error instanceof NbdHandshakeError);
        assert.equal(error.replyType, nbd.REP_ERR_UNKNOWN);
        assert.equal(error.exportName, 'other');
        assert.match(
          error.message,
          /^nbd:\/\/127\.0\.0\.1:\d+\/other: .*refused the export 'other' with NBD_REP_ERR_UNKNOWN: "no export 'other'"/,
        );
        return true;
      });
      await until(() => server.options.includes(nbd.OPT_ABORT), 'aborted');
    } finally {
      await server.close();
    }
  });

  test('an unknown export on a server without NBD_OPT_GO: it closes the connection, a NbdHandshakeError', async () => {
    const server = new FakeNbdServer({ handshake: 'exportNameOnly', exportNames: ['vol'] });
    const port = (await server.listen()) as number;
    try {
      await assert.rejects(NbdClient.connect(tcp(port, 'other'), options), (error: unknown) => {
        assert.ok(error instanceof NbdHandshakeError);
        assert.equal(error.replyType, null);
        assert.match(error.message, /closed the connection after NBD_OPT_EXPORT_NAME 'other'/);
        return true;
      });
    } finally {
      await server.close();
    }
  });

  test('block sizes: a maximum above 32 MiB is capped, one below the minimum is a protocol violation', async () => {
    await withFake({ blockSize: [4096, 4096, 0xffffffff] }, async (_server, client) => {
      assert.equal(client.payloadMax, 32 * 1024 * 1024);
    });
    await withFake({ blockSize: [512, 4096, 100_000] }, async (_server, client) => {
      assert.equal(client.payloadMax, 99_840, 'rounded down to a multiple of the minimum');
    });
    for (const blockSize of [
      [3, 4096, 65536],
      [1 << 17, 1 << 17, 1 << 20],
      [4096, 4096, 512],
    ] as const) {
      const server = new FakeNbdServer({ blockSize });
      const port = (await server.listen()) as number;
      try {
        await assert.rejects(NbdClient.connect(tcp(port), options), isLinkError(/NBD_INFO_BLOCK_SIZE with minimum/));
      } finally {
        await server.close();
      }
    }
  });

  test('a Unix socket', async () => {
    const server = new FakeNbdServer({ exportNames: ['u'] });
    const socketPath = (await server.listen(join(root, 'fake.sock'))) as string;
    try {
      const client = await NbdClient.connect({ kind: 'unix', socketPath, exportName: 'u' }, options);
      await client.write(0, bytes(512, 3));
      assert.deepEqual(server.image.subarray(0, 512), bytes(512, 3));
      await client.close();
    } finally {
      await server.close();
    }
  });

  test('TCP over IPv6: nbd://[::1]:PORT/EXPORT', async (t) => {
    const server = new FakeNbdServer({ exportNames: ['v6'] });
    const port = await server.listen(undefined, '::1').catch((error: NodeJS.ErrnoException) => error.code);
    if (typeof port !== 'number') return t.skip(`no IPv6 loopback here (${port})`);
    try {
      const client = await NbdClient.connect(parseNbdUrl(`nbd://[::1]:${port}/v6`), options);
      await client.write(0, bytes(512, 6));
      assert.deepEqual(server.image.subarray(0, 512), bytes(512, 6));
      await client.close();
    } finally {
      await server.close();
    }
  });

  test('refused, absent, silent and foreign servers are NbdLinkErrors naming the URI', async () => {
    const silent = createServer(() => {});
    const foreign = createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const oldstyle = createServer((socket) => {
      const greeting = Buffer.alloc(152);
      greeting.writeBigUInt64BE(nbd.NBDMAGIC, 0);
      greeting.writeBigUInt64BE(nbd.CLISERV_MAGIC, 8);
      socket.end(greeting);
    });
    const ports: number[] = [];
    for (const server of [silent, foreign, oldstyle]) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      ports.push((server.address() as { port: number }).port);
    }
    try {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const closedPort = (closed.address() as { port: number }).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      await assert.rejects(
        NbdClient.connect(tcp(closedPort), options),
        isLinkError(/^nbd:\/\/127\.0\.0\.1:\d+\/: cannot connect: .*ECONNREFUSED/),
      );
      const absent: NbdAddress = { kind: 'unix', socketPath: join(root, 'absent.sock'), exportName: '' };
      await assert.rejects(NbdClient.connect(absent, options), isLinkError(/absent\.sock: cannot connect: .*ENOENT/));
      const shortly = { ...options, connectTimeoutMs: 200 };
      await assert.rejects(
        NbdClient.connect(tcp(ports[0]!), shortly),
        isLinkError(/^nbd:\/\/127\.0\.0\.1:\d+\/: no NBD handshake within 200 ms/),
      );
      await assert.rejects(NbdClient.connect(tcp(ports[1]!), options), isLinkError(/not an NBD server/));
      await assert.rejects(NbdClient.connect(tcp(ports[2]!), options), isLinkError(/oldstyle handshake/));
    } finally {
      for (const server of [silent, foreign, oldstyle]) server.close();
    }
  });

  test('options must be positive integers', async () => {
    await assert.rejects(NbdClient.connect(tcp(1), { ...options, inFlightMax: 0 }), (error: unknown) =>
      isCowmapError(error, 'E_BAD_REQUEST'),
    );
  });
});

/** A server that greets (fixed newstyle, no zeroes), then answers the client's first option with `replies` as they are. */
async function scriptedServer(replies: readonly Buffer[]): Promise<{ port: number; close: () => void }> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    const greeting = Buffer.alloc(18);
    greeting.writeBigUInt64BE(nbd.NBDMAGIC, 0);
    greeting.writeBigUInt64BE(nbd.IHAVEOPT, 8);
    greeting.writeUInt16BE(nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES, 16);
    socket.write(greeting);
    socket.once('data', () => socket.write(Buffer.concat(replies)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

function optionReply(
  type: number,
  data: Buffer = Buffer.alloc(0),
  option = nbd.OPT_GO,
  magic = nbd.OPTION_REPLY_MAGIC,
): Buffer {
  const header = Buffer.alloc(20);
  header.writeBigUInt64BE(magic, 0);
  header.writeUInt32BE(option, 8);
  header.writeUInt32BE(type, 12);
  header.writeUInt32BE(data.length, 16);
  return Buffer.concat([header, data]);
}

function info(type: number, ...fields: [bytes: 2 | 4 | 8, value: number | bigint][]): Buffer {
  const parts = [Buffer.alloc(2)];
  parts[0]!.writeUInt16BE(type);
  for (const [bytes, value] of fields) {
    const part = Buffer.alloc(bytes);
    if (bytes === 8) part.writeBigUInt64BE(BigInt(value));
    else if (bytes === 4) part.writeUInt32BE(Number(value));
    else part.writeUInt16BE(Number(value));
    parts.push(part);
  }
  return optionReply(nbd.REP_INFO, Buffer.concat(parts));
}

describe('option replies that break the protocol or refuse', () => {
  const exportInfo = info(nbd.INFO_EXPORT, [8, 1 << 20], [2, fakeFlags]);
  const cases: [string, Buffer[], RegExp][] = [
    ['NBD_REP_SERVER to NBD_OPT_GO', [optionReply(nbd.REP_SERVER)], /NBD_REP_SERVER, which is not a reply to it/],
    [
      'NBD_REP_ERR_POLICY',
      [optionReply(nbd.REP_ERR_POLICY, Buffer.from('go away'))],
      /refused the export '' with NBD_REP_ERR_POLICY: "go away"/,
    ],
    [
      'an unnamed error reply',
      [optionReply((0x80000000 | 77) >>> 0)],
      /refused the export '' with option reply 0x8000004d$/,
    ],
    ['an ACK without NBD_INFO_EXPORT', [optionReply(nbd.REP_ACK)], /acknowledged NBD_OPT_GO without NBD_INFO_EXPORT/],
    [
      'a reply to another option',
      [optionReply(nbd.REP_ACK, Buffer.alloc(0), nbd.OPT_LIST)],
      /reply to option 3 where 7 was sent/,
    ],
    ['a reply without its magic', [optionReply(nbd.REP_ACK, Buffer.alloc(0), nbd.OPT_GO, 1n)], /without its magic/],
    ['a reply of 1 MiB', [optionReply(nbd.REP_INFO, Buffer.alloc(1 << 20))], /option reply of 1048576 bytes/],
    ['an NBD_REP_INFO of 1 byte', [optionReply(nbd.REP_INFO, Buffer.alloc(1))], /NBD_REP_INFO of 1 bytes/],
    ['NBD_INFO_EXPORT of 10 bytes', [info(nbd.INFO_EXPORT, [8, 1 << 20])], /NBD_INFO_EXPORT of 10 bytes/],
    [
      'NBD_INFO_BLOCK_SIZE of 10 bytes',
      [info(nbd.INFO_BLOCK_SIZE, [4, 512], [4, 512])],
      /NBD_INFO_BLOCK_SIZE of 10 bytes/,
    ],
    [
      'an export of 2^60 bytes',
      [info(nbd.INFO_EXPORT, [8, 1n << 60n], [2, fakeFlags])],
      /larger than this client handles/,
    ],
    ['65 NBD_REP_INFO', Array.from({ length: 65 }, () => exportInfo), /more than 64 replies to NBD_OPT_GO/],
  ];
  for (const [what, replies, pattern] of cases) {
    test(what, async () => {
      const server = await scriptedServer(replies);
      try {
        await assert.rejects(NbdClient.connect(tcp(server.port), options), isLinkError(pattern));
      } finally {
        server.close();
      }
    });
  }

  test('information it does not know is ignored; transmission flags without NBD_FLAG_HAS_FLAGS mean nothing', async () => {
    const name = optionReply(nbd.REP_INFO, Buffer.concat([Buffer.from([0, nbd.INFO_NAME]), Buffer.from('canonical')]));
    const noFlags = info(nbd.INFO_EXPORT, [8, 4096], [2, nbd.FLAG_SEND_FLUSH | nbd.FLAG_READ_ONLY]);
    const server = await scriptedServer([name, noFlags, optionReply(nbd.REP_ACK)]);
    try {
      const client = await NbdClient.connect(tcp(server.port), options);
      assert.deepEqual([client.exportSize, client.canFlush, client.readOnly], [4096, false, false]);
      client.destroy();
    } finally {
      server.close();
    }
  });
});
