// What the handshake says of an export, checked at connect before anything is written
// (impl/remote/linkSession.ts, checkExport; review item 5): an export that could never
// confirm a region, or whose minimum block size breaks the layout, is refused at once
// with E_CORRUPT instead of after the whole retry budget.

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
// A budget long enough that a retried refusal would show in the log as many connects.
const slowLink = { retryBudgetMs: 2_000, backoffFirstMs: 50, backoffMaxMs: 100 };
const root = mkdtempSync(join(tmpdir(), 'cowmap-exportchecks-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

function create(): { volume: ReplicatedVolume; target: MemoryExport } {
  const target = new MemoryExport(exportSizeOf(geometry));
  const options = { secondaryUrl: url, linkFactory: memoryLinkFactory(target), link: slowLink };
  const volume = ReplicatedVolume.create(new NodeStorage(), join(root, `v${dirs++}`), geometry, options);
  return { volume, target };
}

/** A cycle against the export as changed by `change` fails at its first connect with `code` and `why`. */
function refusedAtOnce(change: (target: MemoryExport) => void, code: string, why: RegExp): void {
  const { volume, target } = create();
  volume.writeRegion(1, new Uint8Array(geometry.regionSize).fill(1));
  change(target);
  target.dropConnections();
  target.log.length = 0;
  assert.throws(
    () => runCycle(volume),
    (error: unknown) => error instanceof ReplicaLinkError && error.code === code && why.test(error.message),
  );
  assert.deepEqual(target.log, ['connect'], 'refused at the first connect, nothing written, not retried');
  volume.close();
}

describe('the export as the handshake describes it', () => {
  it('an export without FLUSH is E_CORRUPT at once: no region could be confirmed', () => {
    refusedAtOnce(
      (target) => (target.canFlush = false),
      'E_CORRUPT',
      /offers no FLUSH: no region could ever be confirmed/,
    );
  });

  it('a minimum block size that does not divide the region size is E_CORRUPT at once', () => {
    refusedAtOnce((target) => (target.blockSizeMin = 8192), 'E_CORRUPT', /minimum block size of 8192 bytes/);
  });

  it('a minimum block size that divides both is fine', () => {
    const { volume, target } = create();
    target.blockSizeMin = 4096;
    target.dropConnections();
    volume.writeRegion(1, new Uint8Array(geometry.regionSize).fill(1));
    runCycle(volume);
    assert.equal(volume.phase, 'idle');
    volume.close();
  });
});
