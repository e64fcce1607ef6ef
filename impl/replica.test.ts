// The secondary's files (docs/format.md, "The secondary" and "DIR2/digests"): the
// digest table written with each batch, verified reads, a flipped byte in the image
// or the table found and named, a torn page told apart from rot by the pending
// regions, the format version 1 refused, and what create leaves on failure.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { crc32 } from './checksum.ts';
import { digestBatchIo, digestPageBytes, digestTableSize, entriesPerPage } from './digestTable.ts';
import { CowmapError, type ErrorCode } from './errors.ts';
import { makeTemporaryDir, NodeStorage, removeTree } from './nodeStorage.ts';
import { encodeReplicaHeader, FileReplica, type ReplicaIdentity } from './replica.ts';
import { flipByte, patchFile, readFileBytes } from './testFiles.ts';

const storage = new NodeStorage();
const regionSize = 1024;
let root: string;
let dir: string;

beforeEach(() => {
  root = makeTemporaryDir('cowmap-replica-');
  dir = join(root, 'secondary');
});

afterEach(() => removeTree(root));

function identity(regions = 4): ReplicaIdentity {
  return { volumeId: new Uint8Array(16).fill(7), regions, regionSize };
}

function content(seed: number): Uint8Array {
  return Uint8Array.from({ length: regionSize }, (_, i) => (seed * 31 + i * 7) & 0xff);
}

function expectCorrupt(call: () => unknown, message: RegExp, code: ErrorCode = 'E_CORRUPT'): void {
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof CowmapError, `expected a CowmapError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
}

function withReplica<T>(body: (replica: FileReplica) => T, regions = 4): T {
  const replica = FileReplica.open(storage, dir, identity(regions));
  try {
    return body(replica);
  } finally {
    replica.close();
  }
}

describe('the digest table', () => {
  test('create makes DIR2/digests at full size; a fresh entry is the CRC of a zero region', () => {
    FileReplica.create(storage, dir, identity(2100)).close();
    assert.deepEqual(storage.list(dir), ['digests', 'image', 'replica']);
    const file = storage.open(join(dir, 'digests'), { create: false });
    assert.equal(file.size(), digestTableSize(2100));
    file.close();
    assert.equal(digestTableSize(2100), 3 * digestPageBytes);
    withReplica((replica) => {
      const zero = crc32(new Uint8Array(regionSize));
      for (const region of [0, 1019, 1020, 2099]) assert.equal(replica.digestOf(region), zero);
      assert.ok(replica.verifyRegion(5));
      assert.deepEqual(replica.digestPageProblems(), []);
    }, 2100);
  });

  test('writeRegions records the CRC of what it wrote, durable across a reopen, one write per run of pages', () => {
    FileReplica.create(storage, dir, identity(3000)).close();
    withReplica((replica) => replica.writeRegions([2999, 0, 1020, 5], (region) => content(region)), 3000);
    withReplica((replica) => {
      for (const region of [0, 5, 1020, 2999]) {
        assert.equal(replica.digestOf(region), crc32(content(region)));
        assert.deepEqual(replica.readRegion(region, { verify: true }), content(region));
      }
      assert.equal(replica.digestOf(1), crc32(new Uint8Array(regionSize)));
    }, 3000);
    // Each page stamped with its index and a CRC over bytes 0..4091.
    for (let page = 0; page < 3; page++) {
      const bytes = readFileBytes(join(dir, 'digests'), page * digestPageBytes, digestPageBytes);
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      assert.equal(view.getUint32(4080, true), page);
      assert.equal(view.getUint32(4092, true), crc32(bytes.subarray(0, 4092)));
    }
    // An entry holds crc32(region) XOR crc32(zero region): 0 for a region never sent,
    // as in a page never written, so a torn first write keeps the other entries.
    const page0 = readFileBytes(join(dir, 'digests'), 0, digestPageBytes);
    const view0 = new DataView(page0.buffer, page0.byteOffset);
    assert.equal(view0.getUint32(0, true), (crc32(content(0)) ^ crc32(new Uint8Array(regionSize))) >>> 0);
    assert.equal(view0.getUint32(4, true), 0);
  });

  test('a flipped byte in the image: a verified read is E_CORRUPT naming the image, the offset and the region', () => {
    FileReplica.create(storage, dir, identity()).close();
    withReplica((replica) => replica.writeRegions([2], () => content(2)));
    flipByte(join(dir, 'image'), 2 * regionSize + 100);
    withReplica((replica) => {
      assert.notDeepEqual(replica.readRegion(2), content(2)); // unverified: the bytes as they are
      expectCorrupt(
        () => replica.readRegion(2, { verify: true }),
        new RegExp(`image offset ${2 * regionSize} region 2: the region does not match its digest`),
      );
      assert.equal(replica.verifyRegion(2), false);
      assert.equal(replica.verifyRegion(1), true);
    });
  });

  test('a flipped byte in a page: E_CORRUPT naming DIR2/digests, the page and the region, unless the page holds a pending region', () => {
    FileReplica.create(storage, dir, identity(2100)).close();
    withReplica((replica) => replica.writeRegions([1030, 1031], (region) => content(region)), 2100);
    flipByte(join(dir, 'digests'), digestPageBytes + 11 * 4 + 1); // region 1031's entry
    withReplica((replica) => {
      expectCorrupt(
        () => replica.digestOf(1030),
        /digests offset 4096 region 1030: page 1 of the digest table fails its CRC-32/,
      );
      expectCorrupt(() => replica.readRegion(1100, { verify: true }), /digests offset 4096 region 1100: page 1 /);
      assert.equal(replica.digestOf(0), crc32(new Uint8Array(regionSize))); // page 0 is fine
      assert.deepEqual(replica.digestPageProblems(), [{ page: 1, offset: 4096, firstRegion: 1020, regionCount: 1020 }]);
      // A send into a rotten page is refused before anything is written.
      expectCorrupt(() => replica.writeRegions([1040], () => content(9)), /page 1/);
      assert.deepEqual(replica.readRegion(1040), new Uint8Array(regionSize));

      // Torn by a crash inside a batch: region 1031 is pending (in C, not sent since
      // the open); the page's other entries are the same in the old and new page.
      replica.setPending((region) => region === 1031);
      assert.deepEqual(replica.digestPageProblems(), []);
      assert.equal(replica.digestOf(1030), crc32(content(1030)));
      replica.writeRegions([1031], () => content(1031)); // the resend rewrites the page
      replica.setPending(() => false);
      assert.equal(replica.digestOf(1031), crc32(content(1031)));
      assert.equal(replica.digestOf(1030), crc32(content(1030)));
      assert.deepEqual(replica.digestPageProblems(), []);
    }, 2100);
  });

  test('rewriteDigestPages recomputes a rotten page from S, durably', () => {
    FileReplica.create(storage, dir, identity(2100)).close();
    withReplica((replica) => replica.writeRegions([1500], () => content(1500)), 2100);
    patchFile(join(dir, 'digests'), digestPageBytes + 4092, Uint8Array.of(1, 2, 3, 4)); // the page's CRC
    withReplica((replica) => {
      assert.equal(replica.digestPageProblems().length, 1);
      replica.rewriteDigestPages([1]);
    }, 2100);
    withReplica((replica) => {
      assert.deepEqual(replica.digestPageProblems(), []);
      assert.equal(replica.digestOf(1500), crc32(content(1500)));
      assert.equal(replica.digestOf(1501), crc32(new Uint8Array(regionSize)));
    }, 2100);
  });

  test('open refuses a table of the wrong size or a missing one', () => {
    FileReplica.create(storage, dir, identity()).close();
    const file = storage.open(join(dir, 'digests'), { create: false });
    file.truncate(digestPageBytes * 2);
    file.close();
    expectCorrupt(() => withReplica(() => {}), /digests is 8192 bytes, 4 regions need 4096/);
    storage.unlink(join(dir, 'digests'));
    expectCorrupt(() => withReplica(() => {}), /digests is missing/);
  });

  test('a read-only open reads the table and writes nothing', () => {
    FileReplica.create(storage, dir, identity()).close();
    withReplica((replica) => replica.writeRegions([3], () => content(3)));
    const replica = FileReplica.open(storage, dir, identity(), { readOnly: true });
    try {
      assert.deepEqual(replica.readRegion(3, { verify: true }), content(3));
      assert.throws(() => replica.writeRegions([3], () => content(4)));
    } finally {
      replica.close();
    }
    withReplica((again) => assert.deepEqual(again.readRegion(3, { verify: true }), content(3)));
  });

  test('digestBatchIo counts what writeRegions does to the table: pages read and written, one write per run, one sync', () => {
    FileReplica.create(storage, dir, identity(5000)).close();
    const batch = [2999, 0, 1020, 5, 4500];
    const counted = { bytesRead: 0, bytesWritten: 0, writeCalls: 0, syncCalls: 0 };
    const counting = {
      ...storage,
      open: (path: string, options: { create: boolean }) => {
        const file = storage.open(path, options);
        if (!path.endsWith('digests')) return file;
        return {
          path: file.path,
          read: (position: number, length: number) => {
            counted.bytesRead += length;
            return file.read(position, length);
          },
          write: (position: number, data: Uint8Array) => {
            counted.bytesWritten += data.length;
            counted.writeCalls++;
            file.write(position, data);
          },
          sync: () => {
            counted.syncCalls++;
            file.sync();
          },
          truncate: (length: number) => file.truncate(length),
          size: () => file.size(),
          close: () => file.close(),
        };
      },
      exists: (path: string) => storage.exists(path),
    };
    const replica = FileReplica.open(counting as unknown as NodeStorage, dir, identity(5000), { readOnly: false });
    try {
      Object.assign(counted, { bytesRead: 0, bytesWritten: 0, writeCalls: 0, syncCalls: 0 }); // open's own sync
      replica.writeRegions(batch, (region) => content(region));
    } finally {
      replica.close();
    }
    // Pages 0, 1, 2 (one run) and 4: 4 pages, 2 writes.
    assert.deepEqual(digestBatchIo(batch), {
      bytesRead: 4 * digestPageBytes,
      bytesWritten: 4 * digestPageBytes,
      writeCalls: 2,
      syncCalls: 1,
    });
    assert.deepEqual(counted, digestBatchIo(batch));
    assert.deepEqual(digestBatchIo([]), { bytesRead: 0, bytesWritten: 0, writeCalls: 0, syncCalls: 0 });
  });

  test('entries per page and the page size agree with the documented layout', () => {
    assert.equal(entriesPerPage * 4 + 16, digestPageBytes);
  });
});

describe('the secondary header, format version 2', () => {
  test('a version 1 secondary (no digest table) is E_CORRUPT "format version 1 ... not supported by this build"', () => {
    FileReplica.create(storage, dir, identity()).close();
    const header = encodeReplicaHeader(identity());
    const view = new DataView(header.buffer);
    assert.equal(view.getUint32(8, true), 2);
    view.setUint32(8, 1, true);
    view.setUint32(508, crc32(header.subarray(0, 508)), true);
    patchFile(join(dir, 'replica'), 0, header);
    storage.unlink(join(dir, 'digests'));
    expectCorrupt(() => withReplica(() => {}), /replica: format version 1 .*not supported by this build/);
    // A flipped byte in the version field of a version 2 header is rot: its CRC fails.
    FileReplica.create(storage, join(root, 'other'), identity()).close();
    patchFile(join(root, 'other', 'replica'), 8, Uint8Array.of(3));
    expectCorrupt(() => FileReplica.open(storage, join(root, 'other'), identity()), /not this volume's: bad checksum/);
  });

  test('create never touches a file it did not make, and removes what it made when it fails', () => {
    storage.mkdir(dir);
    patchFileNew(join(dir, 'replica'), Uint8Array.of(42));
    expectCorrupt(() => FileReplica.create(storage, dir, identity()), /replica exists/, 'E_EXISTS');
    assert.deepEqual(storage.list(dir), ['replica']);
    assert.deepEqual(readFileBytes(join(dir, 'replica'), 0, 1), Uint8Array.of(42));
  });
});

function patchFileNew(path: string, bytes: Uint8Array): void {
  const file = storage.open(path, { create: true });
  try {
    file.write(0, bytes);
    file.sync();
  } finally {
    file.close();
  }
}
