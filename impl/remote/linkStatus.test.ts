// The link's status as `cowmap status` prints it (LinkSession.status through
// ReplicatedVolume.linkStatus): failed attempts count every attempt a fault ended, a
// connection dropped mid-call as much as a refused connect, and the last error
// carries its E_ code.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ReplicaLinkError } from '../errors.ts';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { runCycle } from '../runCycle.ts';
import { exportSizeOf } from './controlBlock.ts';
import { MemoryExport, memoryLinkFactory } from './memoryLink.ts';

const geometry = { regions: 8, regionSize: 4096 };
const url = 'nbd://127.0.0.1:10809/secondary';
const fastLink = { retryBudgetMs: 100, backoffFirstMs: 5, backoffMaxMs: 20 };
const root = mkdtempSync(join(tmpdir(), 'cowmap-linkstatus-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

function create(): { volume: ReplicatedVolume; target: MemoryExport } {
  const target = new MemoryExport(exportSizeOf(geometry));
  const options = { secondaryUrl: url, linkFactory: memoryLinkFactory(target), link: fastLink };
  return { volume: ReplicatedVolume.create(new NodeStorage(), join(root, `v${dirs++}`), geometry, options), target };
}

describe('the link status', () => {
  it('counts the attempts that a dropped connection ended, with the E_ code in the last error', () => {
    const { volume, target } = create();
    volume.writeRegion(1, new Uint8Array(geometry.regionSize).fill(1));
    target.faults.failFlushes = 1000; // every attempt connects, then its FLUSH fails and the connection goes
    assert.throws(() => runCycle(volume), ReplicaLinkError);
    const status = volume.linkStatus();
    assert.equal(status?.state, 'down');
    assert.ok((status?.failedAttempts ?? 0) >= 2, `failedAttempts ${status?.failedAttempts}`);
    assert.match(status?.lastError ?? '', /^E_IO: FLUSH: EIO reply/);
    target.faults.failFlushes = 0;
    runCycle(volume);
    assert.equal(volume.linkStatus()?.state, 'up');
    assert.equal(volume.linkStatus()?.failedAttempts, 0);
    volume.close();
  });

  it('is null for a directory secondary', () => {
    const volume = ReplicatedVolume.create(new NodeStorage(), join(root, `v${dirs++}`), geometry);
    assert.equal(volume.linkStatus(), null);
    assert.equal(volume.probeLink(), null);
    volume.close();
  });
});
