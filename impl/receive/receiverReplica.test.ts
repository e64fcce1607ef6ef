// The `consistent:` secondary (receiverReplica.ts): the claim at create, batches
// that reach S (the latest image) but not the consistent image until confirmCycle,
// the digest table, and another volume's store refused at open.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryStorage } from '../../harness/storage/memoryStorage.ts';
import { crc32 } from '../checksum.ts';
import { isCowmapError } from '../errors.ts';
import { ReceiverReplica } from './receiverReplica.ts';

const dir = '/secondary';
const identity = { volumeId: new Uint8Array(16).fill(1), regions: 4, regionSize: 1024 };

function region(value: number): Uint8Array {
  return new Uint8Array(identity.regionSize).fill(value);
}

describe('ReceiverReplica', () => {
  test('create claims cycle 0; a batch is in S at once and in the consistent image after confirmCycle', () => {
    const storage = new MemoryStorage();
    const replica = ReceiverReplica.create(storage, dir, identity);
    assert.equal(replica.store.status().completedCycle, 0);
    assert.deepEqual(replica.readConsistentRegion(2), region(0));
    replica.cycleRunning(1);
    replica.writeRegions([1, 2], (r) => region(10 + r));
    assert.deepEqual(replica.readRegion(2, { verify: true }), region(12));
    assert.deepEqual(replica.readConsistentRegion(2), region(0));
    assert.equal(replica.digestOf(1), crc32(region(11)));
    replica.writeRegions([3], () => region(13));
    replica.confirmCycle(1);
    assert.deepEqual(replica.readConsistentRegion(2), region(12));
    assert.deepEqual(replica.readConsistentRegion(3), region(13));
    assert.equal(replica.store.status().completedCycle, 1);
    // A cycle with nothing to send still commits.
    replica.cycleRunning(2);
    replica.confirmCycle(2);
    assert.equal(replica.store.status().completedCycle, 2);
    replica.close();

    const reopened = ReceiverReplica.open(storage, dir, identity, { readOnly: true });
    assert.ok(reopened.verifyRegion(3));
    assert.deepEqual(reopened.readConsistentRegion(1), region(11));
    reopened.close();
  });

  test("another volume's store and a missing one are refused with E_CORRUPT", () => {
    const storage = new MemoryStorage();
    ReceiverReplica.create(storage, dir, identity).close();
    const other = { ...identity, volumeId: new Uint8Array(16).fill(2) };
    assert.throws(
      () => ReceiverReplica.open(storage, dir, other),
      (error: unknown) => isCowmapError(error, 'E_CORRUPT') && /another volume/.test(String(error)),
    );
    assert.throws(
      () => ReceiverReplica.open(storage, '/nothing', identity),
      (error: unknown) =>
        isCowmapError(error, 'E_CORRUPT') && /the secondary in \/nothing is missing/.test(String(error)),
    );
    // The refusal released the store's lock: the right volume opens.
    ReceiverReplica.open(storage, dir, identity).close();
  });

  test('a restarted primary continues the running cycle over the kept journal', () => {
    const storage = new MemoryStorage();
    const replica = ReceiverReplica.create(storage, dir, identity);
    replica.cycleRunning(1);
    replica.writeRegions([0], () => region(5));
    replica.close();
    const reopened = ReceiverReplica.open(storage, dir, identity);
    assert.equal(reopened.store.status().runningCycle, 1);
    reopened.cycleRunning(1);
    reopened.writeRegions([1], () => region(6));
    reopened.confirmCycle(1);
    assert.deepEqual(reopened.readConsistentRegion(0), region(5));
    assert.deepEqual(reopened.readConsistentRegion(1), region(6));
    reopened.close();
  });
});
