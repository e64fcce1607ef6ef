// Structured replies and metadata contexts over a socket, with the hand-written
// client of structuredTestClient.ts against the real server on port 0: the option
// haggling (STRUCTURED_REPLY, LIST/SET_META_CONTEXT, GO), then READ, errors and
// BLOCK_STATUS as structured replies, checked byte by byte.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import * as nbd from './protocol.ts';
import { NbdServer } from './server.ts';
import {
  contextsOf,
  decodeBlockStatus,
  decodeError,
  metaContextData,
  StructuredTestClient,
} from './structuredTestClient.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-nbd-handshake-'));
after(() => rmSync(root, { recursive: true, force: true }));
let volumes = 0;
const regionSize = 4096;
const regions = 8;
const next = 'qemu:dirty-bitmap:cowmap-next';
const current = 'qemu:dirty-bitmap:cowmap-current';

async function withServer(body: (port: number, volume: ReplicatedVolume) => Promise<void>): Promise<void> {
  const volume = ReplicatedVolume.create(new NodeStorage(), join(root, `v${volumes++}`), { regions, regionSize });
  const server = new NbdServer(volume, { exportName: 'vol', log: () => {} });
  const port = (await server.listen({ port: 0 })) as number;
  try {
    await body(port, volume);
  } finally {
    await server.close();
    volume.close();
  }
}

/** A client in the transmission phase with structured replies and these contexts selected. */
async function negotiated(port: number, queries: readonly string[]): Promise<StructuredTestClient> {
  const client = await StructuredTestClient.connect(port);
  assert.deepEqual(types(await client.ask(nbd.OPT_STRUCTURED_REPLY)), [nbd.REP_ACK]);
  await client.ask(nbd.OPT_SET_META_CONTEXT, metaContextData('vol', queries));
  await client.goTo('vol');
  return client;
}

const types = (replies: readonly { type: number }[]) => replies.map((reply) => reply.type);

describe('option haggling', () => {
  test('STRUCTURED_REPLY: ACK; with data NBD_REP_ERR_INVALID', async () => {
    await withServer(async (port) => {
      const client = await StructuredTestClient.connect(port);
      assert.deepEqual(types(await client.ask(nbd.OPT_STRUCTURED_REPLY, Buffer.alloc(1))), [nbd.REP_ERR_INVALID]);
      assert.deepEqual(types(await client.ask(nbd.OPT_STRUCTURED_REPLY)), [nbd.REP_ACK]);
      client.close();
    });
  });

  test('LIST: every context for no query, wildcards, unknown names ignored, ids 0; unknown export', async () => {
    await withServer(async (port) => {
      const client = await StructuredTestClient.connect(port);
      const list = async (queries: string[], name = 'vol') => {
        const replies = await client.ask(nbd.OPT_LIST_META_CONTEXT, metaContextData(name, queries));
        assert.equal(replies.at(-1)!.type, nbd.REP_ACK);
        return contextsOf(replies);
      };
      const all = [
        [0, 'base:allocation'],
        [0, next],
        [0, current],
      ];
      assert.deepEqual(await list([]), all, 'LIST is answered before STRUCTURED_REPLY too');
      await client.ask(nbd.OPT_STRUCTURED_REPLY);
      assert.deepEqual(await list([], ''), all);
      assert.deepEqual(await list(['base:']), [[0, 'base:allocation']]);
      assert.deepEqual(await list(['qemu:']), [
        [0, next],
        [0, current],
      ]);
      assert.deepEqual(await list(['qemu:dirty-bitmap:', 'base:allocation', 'base:allocation']), all);
      assert.deepEqual(await list(['qemu:dirty-bitmap:other', 'x-foo:bar', 'nocolon']), []);
      assert.deepEqual(await list([current]), [[0, current]]);
      const unknown = await client.ask(nbd.OPT_LIST_META_CONTEXT, metaContextData('other', []));
      assert.deepEqual(types(unknown), [nbd.REP_ERR_UNKNOWN]);
      const malformed = await client.ask(nbd.OPT_LIST_META_CONTEXT, metaContextData('vol', ['base:']).subarray(0, 10));
      assert.deepEqual(types(malformed), [nbd.REP_ERR_INVALID]);
      client.close();
    });
  });

  test('SET: refused before STRUCTURED_REPLY; stable ids; wildcards select nothing; a second SET replaces', async () => {
    await withServer(async (port) => {
      const client = await StructuredTestClient.connect(port);
      const set = (queries: string[]) => client.ask(nbd.OPT_SET_META_CONTEXT, metaContextData('vol', queries));
      assert.deepEqual(types(await set([next])), [nbd.REP_ERR_INVALID]);
      await client.ask(nbd.OPT_STRUCTURED_REPLY);
      assert.deepEqual(contextsOf(await set([current, 'base:allocation', 'x-foo:bar'])), [
        [1, 'base:allocation'],
        [3, current],
      ]);
      assert.deepEqual(types(await set(['base:', 'qemu:', 'qemu:dirty-bitmap:'])), [nbd.REP_ACK], 'selects nothing');
      assert.deepEqual(contextsOf(await set([next])), [[2, next]]);
      assert.deepEqual(types(await client.ask(nbd.OPT_SET_META_CONTEXT, metaContextData('other', [next]))), [
        nbd.REP_ERR_UNKNOWN,
      ]);
      await client.goTo('vol');
      // The failed SET replaced the selection with none: BLOCK_STATUS is refused.
      client.send(nbd.CMD_BLOCK_STATUS, 0, regionSize, 5n);
      const [refused] = await client.structuredReply();
      assert.ok(refused!.kind === 'chunk' && refused.type === nbd.REPLY_TYPE_ERROR);
      assert.equal(decodeError(refused.payload).errno, nbd.EINVAL);
      client.close();
    });
  });
});

describe('transmission with structured replies', () => {
  test('READ: one OFFSET_DATA chunk with DONE; errors: one ERROR chunk with its message; WRITE: a simple reply', async () => {
    await withServer(async (port, volume) => {
      const client = await negotiated(port, []);
      const data = Buffer.alloc(3000, 0x5a);
      client.send(nbd.CMD_WRITE, 1000, data.length, 1n, 0, data);
      assert.deepEqual(await client.message(), { kind: 'simple', error: 0, cookie: 1n });
      client.send(nbd.CMD_READ, 999, 3002, 2n);
      const [read] = await client.structuredReply();
      assert.ok(read!.kind === 'chunk');
      assert.deepEqual([read.type, read.flags, read.cookie], [nbd.REPLY_TYPE_OFFSET_DATA, nbd.REPLY_FLAG_DONE, 2n]);
      assert.equal(read.payload.readBigUInt64BE(0), 999n);
      assert.ok(read.payload.subarray(8).equals(Buffer.concat([Buffer.alloc(1), data, Buffer.alloc(1)])));
      client.send(nbd.CMD_READ, regions * regionSize, 1, 3n);
      const [error] = await client.structuredReply();
      assert.ok(error!.kind === 'chunk');
      assert.deepEqual([error.type, error.flags, error.cookie], [nbd.REPLY_TYPE_ERROR, nbd.REPLY_FLAG_DONE, 3n]);
      const decoded = decodeError(error.payload);
      assert.equal(decoded.errno, nbd.EINVAL);
      assert.ok(decoded.message.length > 0, 'the error carries a message');
      client.send(nbd.CMD_READ, 0, 0, 5n);
      const [empty] = await client.structuredReply();
      assert.ok(empty!.kind === 'chunk', 'no simple reply to a READ');
      assert.deepEqual([empty.type, empty.flags, empty.payload.length], [nbd.REPLY_TYPE_NONE, nbd.REPLY_FLAG_DONE, 0]);
      client.send(nbd.CMD_BLOCK_STATUS, 0, regionSize, 4n);
      const [noContext] = await client.structuredReply();
      assert.ok(noContext!.kind === 'chunk' && noContext.type === nbd.REPLY_TYPE_ERROR);
      assert.equal(decodeError(noContext.payload).errno, nbd.EINVAL, 'BLOCK_STATUS without a context');
      assert.ok(Buffer.from(volume.read(1000, 3000)).equals(data));
      client.close();
    });
  });

  test('BLOCK_STATUS: one chunk per context in id order, DONE on the last; REQ_ONE; past the end NBD_EINVAL', async () => {
    await withServer(async (port, volume) => {
      volume.write(2 * regionSize, Uint8Array.of(1));
      volume.write(3 * regionSize + 7, Uint8Array.of(1));
      const client = await negotiated(port, [current, next, 'base:allocation']);
      client.send(nbd.CMD_BLOCK_STATUS, 100, 5 * regionSize, 1n);
      const chunks = await client.structuredReply();
      assert.deepEqual(
        chunks.map((chunk) => (chunk.kind === 'chunk' ? [chunk.type, chunk.flags, chunk.cookie] : chunk)),
        [
          [nbd.REPLY_TYPE_BLOCK_STATUS, 0, 1n],
          [nbd.REPLY_TYPE_BLOCK_STATUS, 0, 1n],
          [nbd.REPLY_TYPE_BLOCK_STATUS, nbd.REPLY_FLAG_DONE, 1n],
        ],
      );
      const statuses = chunks.map((chunk) => decodeBlockStatus((chunk as { payload: Buffer }).payload));
      const r = regionSize;
      assert.deepEqual(statuses, [
        { contextId: 1, extents: [[5 * r, 0]] },
        {
          contextId: 2,
          extents: [
            [2 * r - 100, 0],
            [2 * r, 1],
            [r + 100, 0],
          ],
        },
        { contextId: 3, extents: [[5 * r, 0]] },
      ]);
      client.send(nbd.CMD_BLOCK_STATUS, 2 * r + 1, 4 * r, 2n, nbd.CMD_FLAG_REQ_ONE);
      const one = (await client.structuredReply()).map((chunk) =>
        decodeBlockStatus((chunk as { payload: Buffer }).payload),
      );
      assert.deepEqual(one, [
        { contextId: 1, extents: [[4 * r, 0]] },
        { contextId: 2, extents: [[2 * r - 1, 1]] },
        { contextId: 3, extents: [[4 * r, 0]] },
      ]);
      client.send(nbd.CMD_BLOCK_STATUS, regions * r - 10, 11, 3n);
      const [past] = await client.structuredReply();
      assert.ok(past!.kind === 'chunk' && past.type === nbd.REPLY_TYPE_ERROR);
      assert.equal(decodeError(past.payload).errno, nbd.EINVAL);
      client.close();
    });
  });

  test('without STRUCTURED_REPLY the replies stay simple, and BLOCK_STATUS is NBD_EINVAL', async () => {
    await withServer(async (port) => {
      const client = await StructuredTestClient.connect(port);
      await client.goTo('');
      client.send(nbd.CMD_READ, 0, 4, 1n);
      const read = await client.message(4);
      assert.deepEqual(read, { kind: 'simple', error: 0, cookie: 1n, data: Buffer.alloc(4) });
      client.send(nbd.CMD_BLOCK_STATUS, 0, 4, 2n);
      assert.deepEqual(await client.message(), { kind: 'simple', error: nbd.EINVAL, cookie: 2n });
      client.close();
    });
  });
});
