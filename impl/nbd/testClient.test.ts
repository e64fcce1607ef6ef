// The tests' NBD client against a scripted server that answers out of order: every
// reply reaches its own request by cookie, an error reply rejects with its errno,
// and no more than `inFlightMax` requests are ever unanswered.

import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { ByteQueue } from './byteQueue.ts';
import * as nbd from './protocol.ts';
import { NbdReplyError, NbdTestClient } from './testClient.ts';

const exportBytes = 1 << 20;

function handshake(socket: Socket): void {
  const greeting = Buffer.alloc(18);
  greeting.writeBigUInt64BE(nbd.NBDMAGIC, 0);
  greeting.writeBigUInt64BE(nbd.IHAVEOPT, 8);
  greeting.writeUInt16BE(nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES, 16);
  socket.write(greeting);
}

function optionReply(type: number, data: Buffer): Buffer {
  const header = Buffer.alloc(20);
  header.writeBigUInt64BE(nbd.OPTION_REPLY_MAGIC, 0);
  header.writeUInt32BE(nbd.OPT_GO, 8);
  header.writeUInt32BE(type, 12);
  header.writeUInt32BE(data.length, 16);
  return Buffer.concat([header, data]);
}

/** A server that answers each group of `group` READs in reverse order (data: the cookie's byte); offset 0 fails. */
function scriptedServer(group: number, seen: { unansweredMax: number }) {
  return createServer((socket) => {
    const input = new ByteQueue();
    let negotiated = false;
    let waiting: Buffer[] = [];
    handshake(socket);
    socket.on('data', (chunk: Buffer) => {
      input.push(chunk);
      if (!negotiated && input.length >= 4 + 16) {
        const optionLength = input.peek(20).readUInt32BE(16);
        if (input.length < 20 + optionLength) return;
        input.skip(20 + optionLength);
        const info = Buffer.alloc(12);
        info.writeUInt16BE(nbd.INFO_EXPORT, 0);
        info.writeBigUInt64BE(BigInt(exportBytes), 2);
        info.writeUInt16BE(nbd.FLAG_HAS_FLAGS | nbd.FLAG_SEND_FLUSH, 10);
        socket.write(Buffer.concat([optionReply(nbd.REP_INFO, info), optionReply(nbd.REP_ACK, Buffer.alloc(0))]));
        negotiated = true;
      }
      while (negotiated && input.length >= nbd.REQUEST_HEADER_SIZE) waiting.push(input.take(nbd.REQUEST_HEADER_SIZE));
      seen.unansweredMax = Math.max(seen.unansweredMax, waiting.length);
      if (waiting.length < group) return;
      for (const request of waiting.reverse()) {
        const cookie = request.readBigUInt64BE(8);
        const failed = request.readBigUInt64BE(16) === 0n;
        const reply = Buffer.alloc(16);
        reply.writeUInt32BE(nbd.SIMPLE_REPLY_MAGIC, 0);
        reply.writeUInt32BE(failed ? nbd.EINVAL : 0, 4);
        reply.writeBigUInt64BE(cookie, 8);
        const data = failed ? Buffer.alloc(0) : Buffer.alloc(request.readUInt32BE(24), Number(cookie));
        socket.write(Buffer.concat([reply, data]));
      }
      waiting = [];
    });
  });
}

test('replies out of order reach their requests by cookie; at most inFlightMax unanswered; errors carry errno', async () => {
  const seen = { unansweredMax: 0 };
  const server = scriptedServer(2, seen);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const client = await NbdTestClient.connect({ port }, { inFlightMax: 2 });
    assert.equal(client.sizeBytes, exportBytes);
    const reads = [1, 2, 3, 4].map((index) => client.read(index * 4096, 100 * index));
    const failed = client.read(0, 10);
    const last = client.read(4096, 7);
    const data = await Promise.all(reads);
    data.forEach((bytes, index) => {
      assert.equal(bytes.length, 100 * (index + 1));
      assert.ok(bytes.every((byte) => byte === index + 1));
    });
    await assert.rejects(failed, (error: unknown) => error instanceof NbdReplyError && error.errno === nbd.EINVAL);
    assert.equal((await last).length, 7);
    assert.equal(seen.unansweredMax, 2);
    client.destroy();
    await client.closed;
  } finally {
    server.close();
  }
});
