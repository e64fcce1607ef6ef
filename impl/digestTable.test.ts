// DigestTable.rottenPages: the digest-page loop FileReplica and NbdReplica share.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { crc32 } from './checksum.ts';
import { DigestTable, digestPageBytes, digestTableSize, entriesPerPage } from './digestTable.ts';
import { NodeStorage } from './nodeStorage.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-digesttable-'));
after(() => rmSync(root, { recursive: true, force: true }));
const regionSize = 4096;

function table(regions: number): DigestTable {
  const file = new NodeStorage().open(join(root, `t${regions}`), { create: true });
  file.truncate(digestTableSize(regions));
  return DigestTable.load(file, regions, regionSize);
}

/** Every region of `page` sent once (its page written with a valid CRC). */
function sendPage(digests: DigestTable, page: number): void {
  const { first, end } = digests.regionsOf(page);
  const regions = Array.from({ length: end - first }, (_, i) => first + i);
  const pages = digests.prepare(regions, 'test');
  digests.update(pages, new Map(regions.map((region) => [region, crc32(new Uint8Array([region & 0xff]))])));
}

describe('DigestTable.rottenPages', () => {
  it('names each page that fails its CRC with no pending region, with its offset and regions', () => {
    const regions = entriesPerPage * 2 + 10;
    const digests = table(regions);
    for (let page = 0; page < 3; page++) sendPage(digests, page);
    assert.deepEqual(digests.rottenPages(), []);
    digests.file.write(digestPageBytes + 17, new Uint8Array([0x5a])); // rot in page 1
    digests.file.write(2 * digestPageBytes + 3, new Uint8Array([0xa5])); // and in page 2
    assert.deepEqual(digests.rottenPages(), [
      { page: 1, offset: digestPageBytes, firstRegion: entriesPerPage, regionCount: entriesPerPage },
      { page: 2, offset: 2 * digestPageBytes, firstRegion: 2 * entriesPerPage, regionCount: 10 },
    ]);
    digests.pending = (region) => region === 2 * entriesPerPage + 4; // page 2 holds a pending region: a torn write
    assert.deepEqual(
      digests.rottenPages().map((problem) => problem.page),
      [1],
    );
    digests.file.close();
  });
});
