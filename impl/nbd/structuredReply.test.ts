// The encodings of structured reply chunks (structuredReply.ts) and of the metadata
// context option data (metaContexts.ts), byte by byte against NetworkBlockDevice
// doc/proto.md's layouts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  contextSelected,
  contextsListed,
  metaContextReplyData,
  metaContexts,
  parseMetaContextRequest,
} from './metaContexts.ts';
import * as nbd from './protocol.ts';
import { blockStatusPayload, chunkHeader, errorPayload, offsetDataPrefix } from './structuredReply.ts';
import { decodeBlockStatus, decodeError, metaContextData } from './structuredTestClient.ts';

const cookie = Buffer.from('0102030405060708', 'hex');

describe('structured reply chunks', () => {
  test('the header: magic, flags, type, cookie, payload length', () => {
    const header = chunkHeader(cookie, nbd.REPLY_TYPE_BLOCK_STATUS, nbd.REPLY_FLAG_DONE, 20);
    assert.equal(header.toString('hex'), `668e33ef00010005${cookie.toString('hex')}00000014`);
  });

  test('OFFSET_DATA starts with the 64-bit offset', () => {
    assert.equal(offsetDataPrefix(2 ** 40 + 5).toString('hex'), '0000010000000005');
  });

  test('ERROR: error, message length, message; cut to 4096 bytes at a character boundary', () => {
    assert.equal(
      errorPayload(nbd.EINVAL, 'bad').toString('hex'),
      `00000016${'0003'}${Buffer.from('bad').toString('hex')}`,
    );
    assert.deepEqual(decodeError(errorPayload(nbd.EIO, '')), { errno: nbd.EIO, message: '' });
    const long = `${'x'.repeat(4095)}é${'y'.repeat(10)}`;
    const cut = decodeError(errorPayload(nbd.EIO, long));
    assert.equal(cut.message, 'x'.repeat(4095), 'the two-byte é that would end at byte 4097 is left out whole');
    assert.equal(decodeError(errorPayload(nbd.EIO, 'z'.repeat(5000))).message.length, nbd.STRING_BYTES_MAX);
    assert.throws(() => errorPayload(0, 'no error'), /nonzero error/);
  });

  test('BLOCK_STATUS: context id, then length and flags per extent; never empty, never a zero length', () => {
    const payload = blockStatusPayload(3, [
      { length: 4096, flags: 1 },
      { length: 0xffffffff, flags: 0 },
    ]);
    assert.equal(payload.toString('hex'), '00000003' + '0000100000000001' + 'ffffffff00000000');
    assert.deepEqual(decodeBlockStatus(payload), {
      contextId: 3,
      extents: [
        [4096, 1],
        [0xffffffff, 0],
      ],
    });
    assert.throws(() => blockStatusPayload(1, []), /at least one extent/);
    assert.throws(() => blockStatusPayload(1, [{ length: 0, flags: 0 }]), /extent length/);
  });
});

describe('metadata context queries', () => {
  test('the contexts and their stable ids', () => {
    assert.deepEqual(
      metaContexts.map((context) => [context.id, context.name]),
      [
        [1, 'base:allocation'],
        [2, 'qemu:dirty-bitmap:cowmap-next'],
        [3, 'qemu:dirty-bitmap:cowmap-current'],
      ],
    );
  });

  test('LIST: exact names and namespace wildcards; unknown names and partial leaves name nothing', () => {
    const names = (query: string) => contextsListed(query).map((context) => context.name);
    assert.deepEqual(names('base:'), ['base:allocation']);
    assert.deepEqual(names('qemu:'), ['qemu:dirty-bitmap:cowmap-next', 'qemu:dirty-bitmap:cowmap-current']);
    assert.deepEqual(names('qemu:dirty-bitmap:'), names('qemu:'));
    assert.deepEqual(names('qemu:dirty-bitmap:cowmap-current'), ['qemu:dirty-bitmap:cowmap-current']);
    for (const query of ['base:alloc', 'qemu:dirty', 'x-other:', 'nocolon', '', ':'])
      assert.deepEqual(names(query), [], query);
  });

  test('SET: only exact names select; wildcards and unknown names select nothing', () => {
    assert.equal(contextSelected('base:allocation')?.id, 1);
    assert.equal(contextSelected('qemu:dirty-bitmap:cowmap-next')?.id, 2);
    for (const query of ['base:', 'qemu:', 'qemu:dirty-bitmap:', 'qemu:dirty-bitmap:other']) {
      assert.equal(contextSelected(query), undefined, query);
    }
  });

  test('the option data: parsed when well formed, null when a length runs past the end or bytes are left', () => {
    const data = metaContextData('vol', ['base:allocation', 'qemu:']);
    assert.deepEqual(parseMetaContextRequest(data), { exportName: 'vol', queries: ['base:allocation', 'qemu:'] });
    assert.deepEqual(parseMetaContextRequest(metaContextData('', [])), { exportName: '', queries: [] });
    assert.equal(parseMetaContextRequest(data.subarray(0, data.length - 1)), null);
    assert.equal(parseMetaContextRequest(Buffer.concat([data, Buffer.alloc(1)])), null);
    assert.equal(parseMetaContextRequest(Buffer.alloc(3)), null);
    assert.equal(parseMetaContextRequest(Buffer.from('00000000', 'hex')), null, 'no query count');
    const tooMany = Buffer.from('0000000000000002', 'hex');
    assert.equal(parseMetaContextRequest(tooMany), null, 'two queries announced, none sent');
    assert.equal(parseMetaContextRequest(metaContextData('v'.repeat(nbd.STRING_BYTES_MAX + 1), [])), null);
  });

  test('an NBD_REP_META_CONTEXT reply: the id, then the name', () => {
    assert.equal(metaContextReplyData(2, 'base:x').toString('hex'), `00000002${Buffer.from('base:x').toString('hex')}`);
  });
});
