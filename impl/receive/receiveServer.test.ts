// The NBD front end of `cowmap receive` over an in-memory store (receiveServerFake.ts):
// what the handshake offers, the signals applied in one connection's order, the
// refusals (EINVAL and a log line), and the stop after a storage error (EIO for every
// later write and FLUSH).

import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { CowmapError } from '../errors.ts';
import * as nbd from '../nbd/protocol.ts';
import { decodeError, metaContextData, StructuredTestClient } from '../nbd/structuredTestClient.ts';
import { type NbdReplyError, NbdTestClient } from '../nbd/testClient.ts';
import { type ControlState, encodeControlBlock, exportSizeOf } from '../remote/controlBlock.ts';
import { ReceiveServer } from './receiveServer.ts';
import { FakeReceiverStore } from './receiveServerFake.ts';

const geometry = { regions: 8, regionSize: 4096 };
const imageSize = geometry.regions * geometry.regionSize;
const volumeId = new Uint8Array(16).fill(7);

function control(cycle: number, state: ControlState, id = volumeId): Uint8Array {
  return encodeControlBlock({
    ...geometry,
    volumeId: id,
    state,
    cycle,
    swapTimeMs: 1_700_000_000_000 + cycle,
    batch: 0,
  });
}

async function started(t: TestContext) {
  const store = new FakeReceiverStore(exportSizeOf(geometry));
  const lines: string[] = [];
  const server = new ReceiveServer(store, { log: (line) => lines.push(line) });
  const port = (await server.listen({ port: 0 })) as number;
  t.after(() => server.close());
  const client = await NbdTestClient.connect({ port });
  t.after(() => client.destroy());
  return { store, server, client, lines, port };
}

const types = (replies: readonly { type: number }[]) => replies.map((reply) => reply.type);

function filled(length: number, value: number): Uint8Array {
  return new Uint8Array(length).fill(value);
}

test('the export is the store: its size, and flush, FUA and write zeroes without TRIM or multi-conn', async (t) => {
  const { client } = await started(t);
  assert.equal(client.sizeBytes, exportSizeOf(geometry));
  const flags = client.transmissionFlags;
  for (const flag of [nbd.FLAG_HAS_FLAGS, nbd.FLAG_SEND_FLUSH, nbd.FLAG_SEND_FUA, nbd.FLAG_SEND_WRITE_ZEROES])
    assert.notEqual(flags & flag, 0, `flag 0x${flag.toString(16)}`);
  assert.equal(flags & nbd.FLAG_CAN_MULTI_CONN, 0);
  assert.equal(flags & nbd.FLAG_SEND_TRIM, 0);
  await assert.rejects(client.trim(0, 4096), (error: NbdReplyError) => error.errno === nbd.EINVAL);
});

test('a cycle pipelined on one connection: the signals apply in the order sent, the consistent image moves at complete', async (t) => {
  const { store, client, lines, server } = await started(t);
  // Nothing awaited between the requests: the order of the connection is what orders them.
  const sent = [
    client.write(imageSize, control(1, 'sending')),
    client.write(0, filled(4096, 0xaa)),
    client.writeZeroes(4096, 8192),
    client.write(3 * 4096, filled(4096, 0xbb), nbd.CMD_FLAG_FUA),
  ];
  await Promise.all(sent);
  await client.flush();
  assert.deepEqual(store.readConsistent(0, 4096), new Uint8Array(4096), 'not before the cycle completes');
  assert.deepEqual(await client.read(0, 4096), Buffer.from(filled(4096, 0xaa)), 'NBD READ sees the latest writes');
  await Promise.all([client.write(imageSize, control(1, 'complete')), client.flush()]);
  assert.deepEqual(store.readConsistent(0, 4096), filled(4096, 0xaa));
  assert.deepEqual(store.readConsistent(3 * 4096, 4096), filled(4096, 0xbb));
  assert.equal(store.status().completedCycle, 1);
  assert.equal(server.cyclesCompleted, 1);
  assert.equal(server.lastCycle?.bytes, 4096 + 8192 + 4096);
  assert.ok(
    lines.some((line) => /receive: cycle 1 started/.test(line)),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((line) => /receive: cycle 1 completed: 16384 bytes/.test(line)),
    lines.join('\n'),
  );
});

test('refusals are EINVAL with a log line, and the rest of the batch still applies', async (t) => {
  const { store, client, lines } = await started(t);
  await assert.rejects(client.write(0, filled(512, 1)), (error: NbdReplyError) => error.errno === nbd.EINVAL);
  await client.write(imageSize, control(2, 'sending'));
  const other = control(2, 'sending', new Uint8Array(16).fill(9));
  const [refused, applied] = await Promise.allSettled([
    client.write(imageSize, other),
    client.write(0, filled(512, 2)),
  ]);
  assert.equal(refused.status, 'rejected');
  assert.equal(((refused as PromiseRejectedResult).reason as NbdReplyError).errno, nbd.EINVAL);
  assert.equal(applied.status, 'fulfilled');
  assert.deepEqual(store.readLatest(0, 512), filled(512, 2));
  assert.ok(
    lines.some((line) => /WRITE at 0, length 512 failed: E_BAD_REQUEST/.test(line)),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((line) => /WRITE at 32768, length 4096 failed: E_CORRUPT/.test(line)),
    lines.join('\n'),
  );
});

test('after a storage error every write and FLUSH is EIO until a restart, reads still answer', async (t) => {
  const { store, client, server, lines } = await started(t);
  await client.write(imageSize, control(1, 'sending'));
  store.failNext = 'flush';
  await assert.rejects(client.flush(), (error: NbdReplyError) => error.errno === nbd.EIO);
  // The store would take these now: the server must not (fsyncgate).
  await assert.rejects(client.write(0, filled(512, 3)), (error: NbdReplyError) => error.errno === nbd.EIO);
  await assert.rejects(client.flush(), (error: NbdReplyError) => error.errno === nbd.EIO);
  assert.deepEqual(await client.read(0, 512), Buffer.alloc(512));
  assert.notEqual(server.target.failure, null);
  assert.ok(
    lines.some((line) => /storage error, no more writes until restarted/.test(line)),
    lines.join('\n'),
  );
  assert.ok(server.target.failure instanceof Error && !(server.target.failure instanceof CowmapError));
});

test('a failing write stops the receiver the same way', async (t) => {
  const { store, client } = await started(t);
  await client.write(imageSize, control(1, 'sending'));
  store.failNext = 'write';
  await assert.rejects(client.write(0, filled(512, 4)), (error: NbdReplyError) => error.errno === nbd.EIO);
  await assert.rejects(
    client.write(imageSize, control(1, 'complete')),
    (error: NbdReplyError) => error.errno === nbd.EIO,
  );
  assert.equal(store.status().completedCycle, null);
});

test('no metadata context is offered, BLOCK_STATUS is EINVAL; with structured replies a refusal is an error chunk', async (t) => {
  const store = new FakeReceiverStore(exportSizeOf(geometry));
  const server = new ReceiveServer(store, { log: () => {} });
  const port = (await server.listen({ port: 0 })) as number;
  t.after(() => server.close());
  const client = await StructuredTestClient.connect(port);
  t.after(() => client.close());
  assert.deepEqual(types(await client.ask(nbd.OPT_STRUCTURED_REPLY)), [nbd.REP_ACK]);
  assert.deepEqual(types(await client.ask(nbd.OPT_LIST_META_CONTEXT, metaContextData('', []))), [nbd.REP_ACK]);
  const set = await client.ask(nbd.OPT_SET_META_CONTEXT, metaContextData('', ['base:allocation']));
  assert.deepEqual(types(set), [nbd.REP_ACK]);
  assert.equal(await client.goTo(''), BigInt(exportSizeOf(geometry)));
  client.send(nbd.CMD_BLOCK_STATUS, 0, 4096, 1n);
  const [status] = await client.structuredReply();
  assert.ok(status?.kind === 'chunk' && status.type === nbd.REPLY_TYPE_ERROR);
  assert.equal(decodeError(status.payload).errno, nbd.EINVAL);
  client.send(nbd.CMD_WRITE, 0, 512, 2n, 0, Buffer.alloc(512, 1));
  const [refused] = await client.structuredReply();
  assert.ok(refused?.kind === 'chunk' && refused.type === nbd.REPLY_TYPE_ERROR);
  assert.deepEqual(decodeError(refused.payload), { errno: nbd.EINVAL, message: 'E_BAD_REQUEST in WRITE' });
});

test('image writes come from the connection of the last control block: a stale connection is refused', async (t) => {
  const { store, port, client: first } = await started(t);
  await first.write(imageSize, control(1, 'sending'));
  await first.write(0, filled(512, 5));
  const second = await NbdTestClient.connect({ port });
  t.after(() => second.destroy());
  await second.write(imageSize, control(1, 'sending')); // the primary reconnected
  await assert.rejects(first.write(0, filled(512, 6)), (error: NbdReplyError) => error.errno === nbd.EINVAL);
  await second.write(0, filled(512, 7));
  await second.write(imageSize, control(1, 'complete'));
  assert.deepEqual(store.readConsistent(0, 512), filled(512, 7));
  // No cycle open now: the store refuses a write of the writer too.
  await assert.rejects(second.write(0, filled(512, 8)), (error: NbdReplyError) => error.errno === nbd.EINVAL);
});

test('every write of a connection older than the writer is refused, control blocks too: the running journal stays', async (t) => {
  const { store, port, client: first, lines } = await started(t);
  const einval = (error: NbdReplyError) => error.errno === nbd.EINVAL;
  await first.write(imageSize, control(1, 'sending'));
  await first.write(0, filled(512, 5));
  const second = await NbdTestClient.connect({ port });
  t.after(() => second.destroy());
  await second.write(imageSize, control(1, 'sending')); // the primary reconnected
  await second.write(0, filled(512, 7));
  await second.write(imageSize, control(1, 'complete'));
  await second.write(imageSize, control(2, 'sending'));
  await second.write(512, filled(512, 8));
  // The first connection's writes, delivered late: its start block of cycle 1 would drop cycle 2's journal.
  await assert.rejects(first.write(imageSize, control(1, 'sending')), einval);
  await assert.rejects(first.write(imageSize, control(2, 'sending')), einval);
  await assert.rejects(first.write(imageSize, control(2, 'complete')), einval);
  assert.deepEqual([store.status().completedCycle, store.status().runningCycle], [1, 2]);
  assert.deepEqual(store.readLatest(0, 1024), Uint8Array.from([...filled(512, 7), ...filled(512, 8)]));
  assert.ok(
    lines.some((line) =>
      /WRITE at 32768, length 4096 failed: E_BAD_REQUEST: a write of connection 1, older than connection 2/.test(line),
    ),
    lines.join('\n'),
  );
  // A later connection takes over with its start block; the second one is stale from then on.
  const third = await NbdTestClient.connect({ port });
  t.after(() => third.destroy());
  await assert.rejects(third.write(1024, filled(512, 9)), einval); // no control block on it yet
  await third.write(imageSize, control(2, 'sending'));
  await assert.rejects(second.write(1024, filled(512, 6)), einval);
  await third.write(1024, filled(512, 9));
  await third.write(imageSize, control(2, 'complete'));
  assert.deepEqual(store.readConsistent(512, 1024), Uint8Array.from([...filled(512, 8), ...filled(512, 9)]));
});
