// The far side put back to an older copy of itself while a cycle runs (review item 1):
// the three ways the batch counter was fooled, over the in-memory export. Each must
// refuse to complete the cycle until every region of C went again, and a completed
// cycle leaves the export equal to the primary.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ReplicaLinkError } from '../errors.ts';
import { volumeSize } from '../geometry.ts';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { controlOffsetOf, decodeControlBlock, exportSizeOf } from './controlBlock.ts';
import { MemoryExport, memoryLinkFactory } from './memoryLink.ts';

const geometry = { regions: 8, regionSize: 4096 };
const url = 'nbd://127.0.0.1:10809/secondary';
const fastLink = { retryBudgetMs: 100, backoffFirstMs: 5, backoffMaxMs: 20 };
const root = mkdtempSync(join(tmpdir(), 'cowmap-farrewind-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

function setup(): { target: MemoryExport; dir: string; volume: ReplicatedVolume } {
  const target = new MemoryExport(exportSizeOf(geometry));
  const dir = join(root, `v${dirs++}`);
  const options = { secondaryUrl: url, linkFactory: memoryLinkFactory(target), link: fastLink };
  return { target, dir, volume: ReplicatedVolume.create(new NodeStorage(), dir, geometry, options) };
}

function reopen(dir: string, target: MemoryExport): ReplicatedVolume {
  return ReplicatedVolume.open(new NodeStorage(), dir, { linkFactory: memoryLinkFactory(target), link: fastLink });
}

const fill = (value: number): Uint8Array => new Uint8Array(geometry.regionSize).fill(value);

/** The export put back to `copy` (a restore, a snapshot rolled back): every connection ends. */
function restore(target: MemoryExport, copy: Uint8Array): void {
  target.replaceWith(copy);
  target.dropConnections();
}

/** Completes the cycle; a lostSent refusal sends every region of C again, as runCycle would. */
function completeAfterResends(volume: ReplicatedVolume): number {
  let refusals = 0;
  for (;;) {
    try {
      volume.completeCycle();
      return refusals;
    } catch (error) {
      if (!(error instanceof ReplicaLinkError && error.lostSent)) throw error;
      refusals++;
      assert.ok(refusals < 5, 'lostSent keeps coming back');
      assert.throws(() => volume.completeCycle(), /not sent/, 'nothing may count as sent after lostSent');
      volume.transferRegions(volume.unsentRegions());
    }
  }
}

function assertFarEqualsPrimary(volume: ReplicatedVolume, target: MemoryExport): void {
  const far = target.bytes.slice(0, volumeSize(geometry));
  for (let region = 0; region < geometry.regions; region++) {
    const at = region * geometry.regionSize;
    assert.deepEqual(far.subarray(at, at + geometry.regionSize), volume.readRegion(region), `region ${region}`);
  }
}

describe('a far side rewound to an older copy mid-cycle', () => {
  it('A: the primary reopened mid-cycle, the export put back to a copy of the previous open', () => {
    const first = setup();
    const { target, dir } = first;
    for (const region of [0, 1, 2]) first.volume.writeRegion(region, fill(region + 1));
    first.volume.startCycle();
    first.volume.transfer(0);
    first.volume.transfer(1);
    const mark = target.snapshot();
    first.volume.transfer(2);
    first.volume.close();
    const volume = reopen(dir, target);
    volume.transfer(2);
    restore(target, mark);
    volume.transfer(0);
    volume.transfer(1);
    assert.ok(completeAfterResends(volume) > 0, 'the rewind went unnoticed');
    assertFarEqualsPrimary(volume, target);
    volume.close();
  });

  it('B: one open, the same older copy put back twice', () => {
    const { target, volume } = setup();
    for (const region of [0, 1, 2]) volume.writeRegion(region, fill(region + 1));
    volume.startCycle();
    volume.transfer(0);
    const mark = target.snapshot();
    volume.transfer(1);
    volume.transfer(2);
    restore(target, mark);
    assert.throws(
      () => volume.completeCycle(),
      (error) => error instanceof ReplicaLinkError && error.lostSent,
    );
    volume.transfer(2);
    restore(target, mark);
    volume.transfer(1);
    volume.transfer(0);
    assert.ok(completeAfterResends(volume) > 0, 'the second rewind went unnoticed');
    assertFarEqualsPrimary(volume, target);
    volume.close();
  });

  it('C: a torn power loss keeps a batch block without its data; a copy of that put back after the resend', () => {
    const { target, volume } = setup();
    volume.writeRegion(0, fill(5));
    volume.writeRegion(1, fill(6));
    volume.startCycle();
    target.faults.failFlushes = 1000;
    assert.throws(() => volume.transferRegions([0, 1]), ReplicaLinkError);
    // The power loss, torn: the durable image plus the unflushed control block, the batch's data lost.
    const torn = target.durable.slice();
    const controlAt = controlOffsetOf(geometry);
    torn.set(target.bytes.subarray(controlAt), controlAt);
    restore(target, torn);
    const mark = target.snapshot();
    target.faults.failFlushes = 0;
    volume.transferRegions([0, 1]);
    restore(target, mark);
    assert.ok(completeAfterResends(volume) > 0, 'the rewind to the torn copy went unnoticed');
    assertFarEqualsPrimary(volume, target);
    volume.close();
  });

  it('an export rewound in place while the connection stays up is caught by the confirmation', () => {
    const { target, volume } = setup();
    for (const region of [0, 1]) volume.writeRegion(region, fill(region + 7));
    volume.startCycle();
    volume.transfer(0);
    const mark = target.snapshot();
    volume.transfer(1);
    target.replaceWith(mark); // no dropConnections: the same connection sees the older image
    assert.ok(completeAfterResends(volume) > 0, 'the rewind in place went unnoticed');
    assertFarEqualsPrimary(volume, target);
    volume.close();
  });

  /** Cycle 1 sends regions 0 and 1 in two batches; returns the export's copy between them. */
  function completeInTwoBatches(): { target: MemoryExport; volume: ReplicatedVolume; between: Uint8Array } {
    const { target, volume } = setup();
    volume.writeRegion(0, fill(1));
    volume.writeRegion(1, fill(2));
    volume.startCycle();
    volume.transferRegions([0]);
    const between = target.snapshot();
    volume.transferRegions([1]);
    volume.completeCycle();
    return { target, volume, between };
  }

  it("a late start block of this open landing after the cycle's completion is a stale write (read back, tolerated)", () => {
    const { target, volume, between } = completeInTwoBatches();
    const controlAt = controlOffsetOf(geometry);
    const late = target.bytes.slice();
    late.set(between.subarray(controlAt), controlAt); // only the control block is older: a write nbdkit completed late
    restore(target, late);
    // To cowmap receive, our (1, sending) back on top is cycle 1's journal uncommitted, which the next
    // start would drop: the next connect writes (1, complete) again before anything else.
    volume.readRegion(0, 'secondary');
    const block = decodeControlBlock(target.durable.slice(controlAt));
    assert.ok(block.kind === 'block' && block.block.cycle === 1 && block.block.state === 'complete', 'completed again');
    volume.writeRegion(2, fill(3));
    volume.startCycle();
    volume.transferRegions([2]);
    assert.equal(completeAfterResends(volume), 0);
    assertFarEqualsPrimary(volume, target);
    volume.close();
  });

  it('the export rewound into the last completed cycle is E_CORRUPT, found by the read-back', () => {
    const { target, volume, between } = completeInTwoBatches();
    restore(target, between);
    volume.writeRegion(2, fill(3));
    volume.startCycle();
    assert.throws(
      () => volume.transferRegions([2]),
      (error) =>
        error instanceof ReplicaLinkError &&
        error.code === 'E_CORRUPT' &&
        /lost completed cycles \(region 1 of cycle 1\)/.test(error.message),
    );
    volume.close();
  });
});
