// NbdClient's requests against the fake server (fakeNbdServer.ts): how they are split
// and flagged, replies out of order, the bound on requests in flight, FLUSH as a
// barrier; and the faults: an error reply fails its request only, while a dropped
// connection, a stalled reply or a reply that breaks the protocol fails every
// outstanding request with NbdLinkError.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isCowmapError } from '../../errors.ts';
import * as nbd from '../protocol.ts';
import { isLinkError, testBytes, until, withFake } from './clientTestKit.ts';
import { FakeNbdServer, fakeFlagsAll } from './fakeNbdServer.ts';
import { NbdLinkError, NbdReplyError } from './nbdErrors.ts';

const types = (server: FakeNbdServer): number[] => server.requests.map((request) => request.type);
const hold = () => 'hold' as const;

describe('requests', () => {
  test('reads and writes past the maximum payload are split; bad ranges are E_BAD_REQUEST', async () => {
    await withFake({ blockSize: [512, 4096, 65536] }, async (server, client) => {
      const data = testBytes(200 * 1024, 5);
      await client.write(1024, data);
      assert.deepEqual(
        server.requests.map((request) => [request.offset, request.length]),
        [
          [1024, 65536],
          [1024 + 65536, 65536],
          [1024 + 131072, 65536],
          [1024 + 196608, 8192],
        ],
      );
      assert.deepEqual(Buffer.from(await client.read(1024, data.length)), data);
      assert.deepEqual(Buffer.from(await client.read(0, 0)), Buffer.alloc(0));
      for (const [offset, length] of [
        [100, 512],
        [0, 100],
        [(1 << 20) - 512, 1024],
        [-512, 512],
        [0.5, 512],
      ] as const) {
        await assert.rejects(
          () => client.read(offset, length),
          (error: unknown) => isCowmapError(error, 'E_BAD_REQUEST'),
        );
      }
      await assert.rejects(client.write(100, Buffer.alloc(512)), (error: unknown) =>
        isCowmapError(error, 'E_BAD_REQUEST'),
      );
    });
  });

  test('FUA: the flag when the server has it, else the write and then a FLUSH', async () => {
    await withFake({}, async (server, client) => {
      await client.write(0, testBytes(512, 1), { fua: true });
      assert.deepEqual(
        server.requests.map((request) => [request.type, request.flags]),
        [[nbd.CMD_WRITE, nbd.CMD_FLAG_FUA]],
      );
    });
    await withFake({ transmissionFlags: nbd.FLAG_HAS_FLAGS | nbd.FLAG_SEND_FLUSH }, async (server, client) => {
      assert.equal(client.canFua, false);
      await client.write(0, testBytes(512, 1), { fua: true });
      assert.deepEqual(types(server), [nbd.CMD_WRITE, nbd.CMD_FLUSH]);
      assert.equal(server.requests[0]!.flags, 0);
    });
  });

  test('WRITE_ZEROES, or writes of zeros split to the maximum payload on a server without it', async () => {
    await withFake({ blockSize: [1, 4096, 65536] }, async (server, client) => {
      server.image.fill(9);
      await client.writeZeroes(4096, 8192);
      assert.deepEqual(types(server), [nbd.CMD_WRITE_ZEROES]);
      assert.equal(
        server.image.subarray(4096, 4096 + 8192).every((byte) => byte === 0),
        true,
      );
      assert.equal(server.image[4095], 9);
    });
    const flags = nbd.FLAG_HAS_FLAGS | nbd.FLAG_SEND_FLUSH;
    await withFake({ blockSize: [1, 4096, 65536], transmissionFlags: flags }, async (server, client) => {
      server.image.fill(9);
      await client.writeZeroes(4096, 150_000);
      assert.deepEqual(
        server.requests.map((request) => [request.type, request.length]),
        [
          [nbd.CMD_WRITE, 65536],
          [nbd.CMD_WRITE, 65536],
          [nbd.CMD_WRITE, 150_000 - 131072],
        ],
      );
      assert.equal(
        server.image.subarray(4096, 4096 + 150_000).every((byte) => byte === 0),
        true,
      );
      assert.equal(server.image[4096 + 150_000], 9);
    });
  });

  test('a read-only export refuses writes; a server without FLUSH makes flush() only wait for the replies', async () => {
    const flags = nbd.FLAG_HAS_FLAGS | nbd.FLAG_READ_ONLY;
    await withFake({ transmissionFlags: flags }, async (server, client) => {
      assert.equal(client.readOnly, true);
      await assert.rejects(
        () => client.writeZeroes(0, 512),
        (error: unknown) => isCowmapError(error, 'E_BAD_REQUEST'),
      );
      await client.flush();
      assert.deepEqual(types(server), []);
    });
  });

  test('replies out of order reach their own requests', async () => {
    await withFake({ onRequest: hold }, async (server, client) => {
      for (let index = 0; index < 8; index++) server.image.fill(index, index * 512, index * 512 + 512);
      const reads = Array.from({ length: 8 }, (_, index) => client.read(index * 512, 512));
      await until(() => server.held.length === 8, '8 requests held');
      for (let index = 7; index >= 0; index--) server.release(index);
      const data = await Promise.all(reads);
      for (const [index, bytes] of data.entries())
        assert.equal(
          bytes.every((byte) => byte === index),
          true,
          `read ${index}`,
        );
      assert.equal(new Set(server.requests.map((request) => request.cookie)).size, 8, 'cookies are unique');
    });
  });

  test('at most inFlightMax requests on the wire; the rest wait in order', async () => {
    await withFake(
      { onRequest: hold },
      async (server, client) => {
        const writes = Array.from({ length: 20 }, (_, index) => client.write(index * 512, testBytes(512, index)));
        await until(() => server.held.length === 3, '3 requests held');
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(server.requests.length, 3, 'a fourth request went out before a reply');
        server.release(1);
        await until(() => server.requests.length === 4, 'the fourth request sent');
        while (server.requests.length < 20 || server.held.length > 0) {
          if (server.held.length > 0) server.release(0);
          else await new Promise((resolve) => setImmediate(resolve));
          assert.ok(server.held.length <= 3, `${server.held.length} requests in flight`);
        }
        await Promise.all(writes);
        assert.deepEqual(
          server.requests.map((request) => request.offset),
          Array.from({ length: 20 }, (_, index) => index * 512),
        );
        assert.deepEqual(server.image.subarray(19 * 512, 20 * 512), testBytes(512, 19));
      },
      { inFlightMax: 3 },
    );
  });

  test('flush() is sent only after every request started before it has its reply', async () => {
    await withFake(
      { onRequest: (request) => (request.type === nbd.CMD_WRITE ? 'hold' : 'answer') },
      async (server, client) => {
        const writes = [client.write(0, testBytes(512, 1)), client.write(512, testBytes(512, 2))];
        const flushed = client.flush();
        await until(() => server.held.length === 2, '2 writes held');
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.deepEqual(
          types(server),
          [nbd.CMD_WRITE, nbd.CMD_WRITE],
          'FLUSH went out before the writes were answered',
        );
        server.release(1);
        server.release(0, nbd.EIO);
        await assert.rejects(writes[0]!, NbdReplyError);
        await flushed;
        assert.deepEqual(types(server), [nbd.CMD_WRITE, nbd.CMD_WRITE, nbd.CMD_FLUSH]);
      },
    );
  });
});

describe('faults', () => {
  test('an error reply fails its request only (NbdReplyError with the errno), the connection goes on', async () => {
    const errnoAt = new Map([
      [512, nbd.ENOSPC],
      [1024, nbd.EPERM],
      [1536, 99],
    ]);
    const onRequest = (request: { offset: number; type: number }) => {
      const errno = request.type === nbd.CMD_FLUSH ? nbd.EIO : errnoAt.get(request.offset);
      return errno === undefined ? ('answer' as const) : { errno };
    };
    await withFake({ onRequest }, async (_server, client) => {
      const results = await Promise.allSettled(
        [0, 512, 1024, 1536].map((offset) => client.write(offset, testBytes(512, 1))),
      );
      assert.equal(results[0]!.status, 'fulfilled');
      const reasons = results.slice(1).map((result) => (result as PromiseRejectedResult).reason as NbdReplyError);
      assert.deepEqual(
        reasons.map((reason) => [reason instanceof NbdReplyError, reason.command, reason.errno]),
        [
          [true, 'WRITE', nbd.ENOSPC],
          [true, 'WRITE', nbd.EPERM],
          [true, 'WRITE', 99],
        ],
      );
      assert.equal(reasons[0]!.errnoName, 'ENOSPC');
      assert.match(reasons[0]!.message, /NBD WRITE of 512 bytes at 512: the server replied ENOSPC/);
      assert.match(reasons[2]!.errnoName, /errno 99 \(unknown, taken as EINVAL\)/);
      await assert.rejects(
        client.flush(),
        (error: unknown) => error instanceof NbdReplyError && error.errnoName === 'EIO',
      );
      assert.deepEqual(Buffer.from(await client.read(0, 512)), testBytes(512, 1));
    });
  });

  test('a dropped connection fails every outstanding and queued request, and every later one, with NbdLinkError', async () => {
    let count = 0;
    const onRequest = () => (++count === 3 ? ('drop' as const) : ('hold' as const));
    await withFake(
      { onRequest },
      async (_server, client) => {
        const results = await Promise.allSettled(
          Array.from({ length: 6 }, (_, index) => client.write(index * 512, testBytes(512, 0))),
        );
        for (const result of results) {
          assert.equal(result.status, 'rejected');
          assert.ok(result.reason instanceof NbdLinkError, String(result.reason));
          assert.match(result.reason.message, /NBD WRITE of 512 bytes at \d+: the server closed the connection/);
        }
        await assert.rejects(
          client.flush(),
          isLinkError(/NBD FLUSH: the connection failed earlier: the server closed the connection/),
        );
      },
      { inFlightMax: 4 },
    );
  });

  test('a reply that does not come within requestTimeoutMs fails the connection', async () => {
    await withFake(
      { onRequest: (request) => (request.type === nbd.CMD_WRITE ? 'answer' : 'hold') },
      async (server, client) => {
        await client.write(0, testBytes(512, 1));
        const reads = [client.read(0, 512), client.read(512, 512)];
        const flushed = client.flush();
        await until(() => server.held.length === 2, 'the READs held');
        const noReply = 'no reply to NBD READ of 512 bytes at 0 within 200 ms';
        await assert.rejects(reads[0]!, isLinkError(new RegExp(`^NBD READ of 512 bytes at 0: ${noReply}`)));
        await assert.rejects(reads[1]!, isLinkError(new RegExp(`^NBD READ of 512 bytes at 512: ${noReply}`)));
        await assert.rejects(flushed, isLinkError(new RegExp(`^NBD FLUSH: the connection failed earlier: ${noReply}`)));
      },
      { requestTimeoutMs: 200 },
    );
  });

  test('replies that break the protocol fail the connection', async () => {
    const broken: [string, (cookie: bigint) => Buffer, RegExp][] = [
      [
        'an unknown cookie',
        (cookie) => FakeNbdServer.replyHeader(0, cookie + 1000n),
        /cookie \d+, which no request in flight has/,
      ],
      ['a bad magic', (cookie) => FakeNbdServer.replyHeader(0, cookie, 0x12345678), /magic 0x12345678/],
      [
        'a structured reply',
        (cookie) => FakeNbdServer.replyHeader(0, cookie, nbd.STRUCTURED_REPLY_MAGIC),
        /structured reply/,
      ],
    ];
    for (const [what, reply, pattern] of broken) {
      await withFake(
        {
          onRequest: (request, _server, socket) => {
            socket.write(reply(request.cookie));
            return 'none';
          },
        },
        async (_server, client) => {
          await assert.rejects(
            client.write(0, testBytes(512, 1)),
            isLinkError(/the server broke the NBD protocol/),
            what,
          );
          await assert.rejects(client.read(0, 512), isLinkError(pattern), what);
        },
      );
    }
  });

  test('NBD_ESHUTDOWN: that request fails, queued ones fail as links, the client disconnects softly', async () => {
    await withFake(
      { onRequest: (request) => (request.offset === 0 ? { errno: nbd.ESHUTDOWN } : 'hold') },
      async (server, client) => {
        const held = client.write(512, testBytes(512, 1));
        await until(() => server.held.length === 1, 'one request held');
        const failed = client.write(0, testBytes(512, 1));
        const queued = client.write(1024, testBytes(512, 1));
        await assert.rejects(
          failed,
          (error: unknown) => error instanceof NbdReplyError && error.errnoName === 'ESHUTDOWN',
        );
        await assert.rejects(queued, isLinkError(/the server is shutting down/));
        await assert.rejects(client.read(0, 512), isLinkError(/the server is shutting down/));
        server.release(0);
        await held;
        await until(() => types(server).includes(nbd.CMD_DISC), 'NBD_CMD_DISC sent');
      },
      { inFlightMax: 2 },
    );
  });

  test('close() waits for the outstanding requests, then sends NBD_CMD_DISC; destroy() fails them', async () => {
    await withFake({ onRequest: hold }, async (server, client) => {
      const write = client.write(0, testBytes(512, 1));
      await until(() => server.held.length === 1, 'the write held');
      const closed = Promise.all([client.close(), client.close()]);
      await assert.rejects(client.read(0, 512), isLinkError(/the client closed the connection/));
      server.release(0);
      await write;
      await closed;
      assert.deepEqual(types(server), [nbd.CMD_WRITE, nbd.CMD_DISC]);
    });
    await withFake({ onRequest: hold }, async (server, client) => {
      const write = client.write(0, testBytes(512, 1));
      await until(() => server.held.length === 1, 'the write held');
      client.destroy();
      await assert.rejects(write, isLinkError(/the client dropped the connection/));
    });
  });

  test('the queue of waiting requests is bounded', async () => {
    await withFake(
      { onRequest: hold, transmissionFlags: fakeFlagsAll },
      async (_server, client) => {
        const payload = Buffer.alloc(512);
        const writes = Array.from({ length: 17 }, () => client.write(0, payload));
        await assert.rejects(
          writes.at(-1)!,
          (error: unknown) => isCowmapError(error, 'E_BAD_REQUEST') && /requests are waiting/.test(error.message),
        );
        client.destroy();
        await Promise.allSettled(writes);
      },
      { inFlightMax: 1, queuedRequestsMax: 16 },
    );
  });
});
