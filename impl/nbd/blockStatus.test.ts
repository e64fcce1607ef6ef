// BLOCK_STATUS's extents (blockStatus.ts) on a real volume: the next and current maps
// as dirty bitmaps, runs merged and cut to the range, REQ_ONE, the extent and scan
// bounds, the errors; and a seeded random check of the extents' properties against
// the set of regions written (the seed is printed).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Prng } from '../../harness/prng.ts';
import { isCowmapError } from '../errors.ts';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { blockStatusExtents, blockStatusReplyBytesMax, regionRuns, regionsScannedMax } from './blockStatus.ts';
import type { Session } from './handshake.ts';
import { metaContexts } from './metaContexts.ts';
import * as nbd from './protocol.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-block-status-'));
after(() => rmSync(root, { recursive: true, force: true }));
let volumes = 0;
const regionSize = 4096;

function volumeWith(regions: number, written: readonly number[]): ReplicatedVolume {
  const volume = ReplicatedVolume.create(new NodeStorage(), join(root, `v${volumes++}`), { regions, regionSize });
  for (const region of written) volume.write(region * regionSize + 100, Uint8Array.of(1, 2, 3));
  return volume;
}

/** A session with the contexts of these ids selected (as after SET). */
function sessionWith(ids: readonly number[], extentsMax = nbd.BLOCK_STATUS_EXTENTS_MAX): Session {
  const names = new Map(ids.map((id) => [id, metaContexts.find((context) => context.id === id)!.name]));
  return { structuredReplies: true, metaContexts: names, extentsMax };
}

const pairs = (extents: readonly { length: number; flags: number }[]) => extents.map((e) => [e.length, e.flags]);

describe('BLOCK_STATUS extents', () => {
  test('cowmap-next: runs of written regions dirty, merged, cut to the range; allocation one data extent', () => {
    const volume = volumeWith(8, [1, 2, 5]);
    try {
      const [allocation, next, current] = blockStatusExtents(volume, sessionWith([3, 1, 2]), 0, 8 * regionSize, 0);
      assert.deepEqual(pairs(allocation!.extents), [[8 * regionSize, 0]]);
      assert.equal(allocation!.contextId, 1, 'contexts in id order');
      assert.equal(next!.contextId, 2);
      const r = regionSize;
      assert.deepEqual(pairs(next!.extents), [
        [r, 0],
        [2 * r, 1],
        [2 * r, 0],
        [r, 1],
        [2 * r, 0],
      ]);
      assert.deepEqual(pairs(current!.extents), [[8 * r, 0]], 'C is all clear while idle');
      const cut = blockStatusExtents(volume, sessionWith([2]), r + 10, 4 * r, 0)[0]!;
      assert.deepEqual(pairs(cut.extents), [
        [2 * r - 10, 1],
        [2 * r, 0],
        [10, 1],
      ]);
      const one = blockStatusExtents(volume, sessionWith([1, 2]), r + 10, 4 * r, nbd.CMD_FLAG_REQ_ONE);
      assert.deepEqual(
        one.map((context) => pairs(context.extents)),
        [[[4 * r, 0]], [[2 * r - 10, 1]]],
      );
    } finally {
      volume.close();
    }
  });

  test('after the swap cowmap-current lists the written regions and cowmap-next is clean', () => {
    const volume = volumeWith(8, [0, 7]);
    try {
      volume.startCycle();
      const [next, current] = blockStatusExtents(volume, sessionWith([2, 3]), 0, 8 * regionSize, 0);
      assert.deepEqual(pairs(next!.extents), [[8 * regionSize, 0]]);
      assert.deepEqual(pairs(current!.extents), [
        [regionSize, 1],
        [6 * regionSize, 0],
        [regionSize, 1],
      ]);
      volume.write(3 * regionSize, Uint8Array.of(9));
      const after = blockStatusExtents(volume, sessionWith([2]), 0, 8 * regionSize, 0)[0]!;
      assert.deepEqual(pairs(after.extents), [
        [3 * regionSize, 0],
        [regionSize, 1],
        [4 * regionSize, 0],
      ]);
    } finally {
      volume.close();
    }
  });

  test('bad input: no context, length 0, past the end (E_BAD_REQUEST / E_RANGE: NBD_EINVAL)', () => {
    const volume = volumeWith(4, []);
    try {
      const bad = (session: Session, offset: number, length: number, code: string) =>
        assert.throws(
          () => blockStatusExtents(volume, session, offset, length, 0),
          (error) => isCowmapError(error) && error.code === code,
        );
      bad(sessionWith([]), 0, regionSize, 'E_BAD_REQUEST');
      bad(sessionWith([2]), 0, 0, 'E_BAD_REQUEST');
      bad(sessionWith([2]), 3 * regionSize, regionSize + 1, 'E_RANGE');
      bad(sessionWith([1]), 4 * regionSize, 1, 'E_RANGE');
    } finally {
      volume.close();
    }
  });

  test('the reply bytes to reserve: one extent per region touched, within the bounds; one with REQ_ONE', () => {
    const session = sessionWith([1, 2, 3]);
    const chunk = (extents: number) => 20 + 4 + 8 * extents;
    assert.equal(blockStatusReplyBytesMax(session, 4096, 4095, 2, 0), chunk(1) + 2 * chunk(2), 'two regions touched');
    assert.equal(blockStatusReplyBytesMax(session, 4096, 0, 4096, 0), 3 * chunk(1));
    assert.equal(blockStatusReplyBytesMax(session, 4096, 0, 40960, nbd.CMD_FLAG_REQ_ONE), 3 * chunk(1));
    const huge = blockStatusReplyBytesMax(sessionWith([2]), 512, 0, 0xffffffff, 0);
    assert.equal(huge, chunk(nbd.BLOCK_STATUS_EXTENTS_MAX), 'at most 2^20 extents');
    assert.equal(blockStatusReplyBytesMax(sessionWith([2], 7), 512, 0, 0xffffffff, 0), chunk(7));
  });

  test('a reply stops at extentsMax extents and at regionsScannedMax regions', () => {
    const alternate = (region: number) => region % 2 === 1;
    assert.deepEqual(regionRuns(512, 0, 512 * 10, 3, alternate), [
      { length: 512, flags: 0 },
      { length: 512, flags: 1 },
      { length: 512, flags: 0 },
    ]);
    const long = regionRuns(512, 0, 0xffffffff, nbd.BLOCK_STATUS_EXTENTS_MAX, () => false);
    assert.deepEqual(long, [{ length: regionsScannedMax * 512, flags: 0 }], 'one clean run, cut at the scan bound');
    const session = sessionWith([2], 2);
    const volume = volumeWith(8, [1, 3, 5]);
    try {
      const extents = blockStatusExtents(volume, session, 0, 8 * regionSize, 0)[0]!.extents;
      assert.deepEqual(
        pairs(extents),
        [
          [regionSize, 0],
          [regionSize, 1],
        ],
        'the session bound: 2 extents',
      );
    } finally {
      volume.close();
    }
  });

  test('random maps and ranges: extents start at the offset, alternate, match the written set, end at the range end', () => {
    const seed = Number(process.env.COWMAP_SEED ?? Date.now() % 1_000_000);
    process.stdout.write(`# blockStatus random check seed ${seed} (COWMAP_SEED=${seed} to repeat)\n`);
    const prng = new Prng(seed);
    const regions = 64;
    const written = [...new Set(Array.from({ length: prng.nextInt(40) }, () => prng.nextInt(regions)))];
    const volume = volumeWith(regions, written);
    try {
      for (let round = 0; round < 200; round++) {
        const offset = prng.nextInt(regions * regionSize);
        const length = 1 + prng.nextInt(regions * regionSize - offset);
        const flags = prng.nextInt(4) === 0 ? nbd.CMD_FLAG_REQ_ONE : 0;
        const session = sessionWith([1, 2, 3]);
        const contexts = blockStatusExtents(volume, session, offset, length, flags);
        const label = `seed ${seed} round ${round}`;
        checkExtents(contexts[1]!.extents, offset, length, flags, new Set(written), label);
        const replyBytes = contexts.reduce((sum, context) => sum + 20 + 4 + 8 * context.extents.length, 0);
        const bound = blockStatusReplyBytesMax(session, regionSize, offset, length, flags);
        assert.ok(replyBytes <= bound, `${label}: a reply of ${replyBytes} bytes over its reserved ${bound}`);
      }
    } finally {
      volume.close();
    }
  });
});

function checkExtents(
  extents: readonly { length: number; flags: number }[],
  offset: number,
  length: number,
  flags: number,
  written: ReadonlySet<number>,
  label: string,
): void {
  const one = (flags & nbd.CMD_FLAG_REQ_ONE) !== 0;
  assert.ok(extents.length >= 1 && (!one || extents.length === 1), `${label}: ${extents.length} extent(s)`);
  let at = offset;
  extents.forEach((extent, index) => {
    assert.ok(extent.length > 0, `${label}: a zero-length extent`);
    if (index > 0) assert.notEqual(extent.flags, extents[index - 1]!.flags, `${label}: equal neighbours not merged`);
    for (let byte = at; byte < at + extent.length; byte += Math.min(regionSize, at + extent.length - byte)) {
      const region = Math.floor(byte / regionSize);
      assert.equal(extent.flags, written.has(region) ? nbd.STATE_DIRTY : 0, `${label}: region ${region}`);
    }
    at += extent.length;
  });
  if (!one) assert.equal(at, offset + length, `${label}: the extents cover the range exactly`);
  else assert.ok(at <= offset + length, `${label}: REQ_ONE's extent within the range`);
}
