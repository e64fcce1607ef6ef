// NbdReplica's logic through ReplicatedVolume, over an in-memory export
// (impl/remote/memoryLink.ts): the claim at create, the wire sequence of a cycle,
// retries, the checks at connect and staleness. The same against nbdkit over real
// sockets: nbdReplicaNbdkit.test.ts.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CowmapError, ReplicaLinkError } from '../errors.ts';
import { volumeSize } from '../geometry.ts';
import { NodeStorage } from '../nodeStorage.ts';
import type { Replica } from '../replica.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { runCycle } from '../runCycle.ts';
import { flipByte, labelBytes } from '../testFiles.ts';
import { controlOffsetOf, decodeControlBlock, encodeControlBlock, exportSizeOf } from './controlBlock.ts';
import { MemoryExport, memoryLinkFactory } from './memoryLink.ts';

const geometry = { regions: 8, regionSize: 4096 };
const url = 'nbd://127.0.0.1:10809/secondary';
const fastLink = { retryBudgetMs: 150, backoffFirstMs: 5, backoffMaxMs: 20 };
const root = mkdtempSync(join(tmpdir(), 'cowmap-nbdreplica-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

function freshSetup(): { dir: string; target: MemoryExport; options: { secondaryUrl: string } & object } {
  const target = new MemoryExport(exportSizeOf(geometry));
  const options = { secondaryUrl: url, linkFactory: memoryLinkFactory(target), link: fastLink };
  return { dir: join(root, `v${dirs++}`), target, options };
}

function create(): { volume: ReplicatedVolume; dir: string; target: MemoryExport } {
  const { dir, target, options } = freshSetup();
  return { volume: ReplicatedVolume.create(new NodeStorage(), dir, geometry, options), dir, target };
}

function openAgain(dir: string, target: MemoryExport, readOnly = false): ReplicatedVolume {
  return ReplicatedVolume.open(new NodeStorage(), dir, {
    linkFactory: memoryLinkFactory(target),
    link: fastLink,
    readOnly,
  });
}

function farControl(target: MemoryExport) {
  const decoded = decodeControlBlock(target.bytes.slice(controlOffsetOf(geometry)));
  assert.equal(decoded.kind, 'block');
  return decoded.kind === 'block' ? decoded.block : assert.fail();
}

function farImage(target: MemoryExport): Uint8Array {
  return target.bytes.slice(0, volumeSize(geometry));
}

function primaryImage(volume: ReplicatedVolume): Uint8Array {
  const image = new Uint8Array(volumeSize(geometry));
  for (let region = 0; region < geometry.regions; region++)
    image.set(volume.readRegion(region), region * geometry.regionSize);
  return image;
}

/** The volume's replica, for its link status (the volume keeps it protected). */
function replicaOf(volume: ReplicatedVolume): Replica {
  return (volume as unknown as { replica: Replica }).replica;
}

const isLinkError =
  (code: string, lostSent = false) =>
  (error: unknown) =>
    error instanceof ReplicaLinkError && error.code === code && error.lostSent === lostSent;

describe('NbdReplica: create claims a fresh export', () => {
  it('writes (0, sending), zeros over the image, (0, complete), then FLUSH, and records the URL verbatim', () => {
    const { volume, dir, target } = create();
    target.bytes.fill(7, 0, volumeSize(geometry)); // a fresh export's image may hold anything
    volume.close();
    assert.ok(existsSync(join(dir, 'remote-digests')));
    const { dir: dir2, target: target2, options } = freshSetup();
    target2.bytes.fill(7, 0, volumeSize(geometry));
    ReplicatedVolume.create(new NodeStorage(), dir2, geometry, options).close();
    const offset = controlOffsetOf(geometry);
    assert.deepEqual(target2.log, [
      'connect',
      `read ${offset} 4096`,
      `write ${offset} 4096`,
      `zeroes 0 ${volumeSize(geometry)}`,
      `write ${offset} 4096`,
      'flush',
    ]);
    assert.ok(target2.durable.subarray(0, volumeSize(geometry)).every((byte) => byte === 0));
    assert.deepEqual(
      { cycle: farControl(target2).cycle, state: farControl(target2).state },
      { cycle: 0, state: 'complete' },
    );
    const reopened = openAgain(dir2, target2);
    assert.equal(
      reopened.readRegion(3, 'secondary').every((byte) => byte === 0),
      true,
    );
    reopened.close();
  });

  const refusals: [string, (target: MemoryExport) => MemoryExport, RegExp][] = [
    ['a wrong size', () => new MemoryExport(exportSizeOf(geometry) - 4096), /needs an export of exactly/],
    [
      "another volume's control block",
      (target) => {
        const block = { ...geometry, volumeId: new Uint8Array(16).fill(9), state: 'complete', cycle: 4 } as const;
        target.bytes.set(encodeControlBlock({ ...block, swapTimeMs: 0, batch: 0 }), controlOffsetOf(geometry));
        return target;
      },
      /not a fresh export.*another volume/,
    ],
    [
      'a control region that is not all zeros',
      (target) => {
        target.bytes[controlOffsetOf(geometry) + 100] = 1;
        return target;
      },
      /not a fresh export.*bad magic/,
    ],
  ];
  for (const [what, prepare, message] of refusals) {
    it(`refuses ${what} with E_CORRUPT, writes nothing and removes what it made`, () => {
      const { dir, target, options } = freshSetup();
      const prepared = prepare(target);
      const before = prepared.bytes.slice();
      assert.throws(
        () =>
          ReplicatedVolume.create(new NodeStorage(), dir, geometry, {
            ...options,
            linkFactory: memoryLinkFactory(prepared),
          }),
        (error: unknown) => isLinkError('E_CORRUPT')(error) && message.test((error as Error).message),
      );
      assert.deepEqual(prepared.bytes, before);
      assert.equal(prepared.log.filter((line) => line.startsWith('write')).length, 0);
      assert.equal(existsSync(dir), false);
    });
  }

  it('fails with E_IO when the far side stays unreachable, and removes what it made', () => {
    const { dir, target, options } = freshSetup();
    target.faults.refuseConnects = 1_000;
    assert.throws(
      () => ReplicatedVolume.create(new NodeStorage(), dir, geometry, options),
      (error: unknown) => error instanceof CowmapError && error.code === 'E_IO' && /ECONNREFUSED/.test(error.message),
    );
    assert.equal(existsSync(dir), false);
  });

  it('refuses a bad URL and two secondaries at once with E_BAD_REQUEST before making anything', () => {
    const { dir, options } = freshSetup();
    for (const bad of [
      { ...options, secondaryUrl: 'nbd://host:notaport/x' },
      { ...options, secondaryDir: join(root, 'elsewhere') },
    ]) {
      assert.throws(() => ReplicatedVolume.create(new NodeStorage(), dir, geometry, bad), { code: 'E_BAD_REQUEST' });
    }
    assert.equal(existsSync(dir), false);
  });
});

describe('NbdReplica: a cycle', () => {
  it("makes the export's image equal P@swap, each batch FLUSHed after its control block, completion last", () => {
    const { volume, target } = create();
    for (const region of [1, 2, 5]) volume.writeRegion(region, labelBytes(`v1 r${region}`, geometry.regionSize));
    volume.startCycle();
    const atSwap = primaryImage(volume);
    volume.writeRegion(2, labelBytes('after the swap', geometry.regionSize)); // not part of this cycle
    target.log.length = 0;
    runCycle(volume);
    assert.deepEqual(farImage(target), atSwap);
    assert.deepEqual(target.durable.subarray(0, volumeSize(geometry)), atSwap);
    const offset = controlOffsetOf(geometry);
    const size = geometry.regionSize;
    // On the connection create made: no connect.
    assert.deepEqual(target.log, [
      `write ${offset} 4096`, // (1, sending, 0): the start
      `write ${size} ${2 * size}`, // regions 1 and 2 merged
      `write ${5 * size} ${size}`,
      `write ${offset} 4096`, // (1, sending, 1): the batch is in
      'flush',
      `read ${offset} 4096`, // the confirmation judges the far block even on the same connection
      `write ${offset} 4096`, // (1, complete, 1)
      'flush',
    ]);
    const block = farControl(target);
    assert.deepEqual(
      { cycle: block.cycle, state: block.state, batch: block.batch },
      { cycle: 1, state: 'complete', batch: 1 },
    );
    assert.ok(block.swapTimeMs > 0);
    assert.equal(replicaOf(volume).linkStatus?.().far?.completedCycle, 1);
    volume.close();
  });

  it('a refused connection past the budget is ReplicaLinkError E_IO; the volume stays usable and a later run completes', () => {
    const { volume, target } = create();
    volume.writeRegion(3, labelBytes('r3', geometry.regionSize));
    volume.startCycle();
    const atSwap = primaryImage(volume);
    target.dropConnections();
    target.faults.refuseConnects = 1_000;
    assert.throws(() => runCycle(volume), isLinkError('E_IO'));
    assert.equal(volume.phase, 'replicating');
    volume.writeRegion(4, labelBytes('still taking writes', geometry.regionSize));
    target.faults.refuseConnects = 2; // within the budget now
    const run = runCycle(volume);
    assert.equal(run.resumed, true);
    assert.equal(volume.phase, 'idle');
    assert.deepEqual(farImage(target), atSwap);
    volume.close();
  });

  it('a FLUSH that fails is retried with the whole batch; one that always fails never completes the cycle', () => {
    const { volume, target } = create();
    volume.writeRegion(6, labelBytes('r6', geometry.regionSize));
    volume.startCycle();
    target.faults.failFlushes = 1;
    target.log.length = 0;
    runCycle(volume);
    const dataWrites = target.log.filter((line) => line === `write ${6 * geometry.regionSize} ${geometry.regionSize}`);
    assert.equal(dataWrites.length, 2, target.log.join('\n'));
    assert.equal(farControl(target).cycle, 1);

    volume.writeRegion(6, labelBytes('r6 v2', geometry.regionSize));
    volume.startCycle();
    target.faults.failFlushes = 1_000;
    assert.throws(() => runCycle(volume), isLinkError('E_IO'));
    assert.equal(volume.phase, 'replicating');
    const block = farControl(target);
    assert.ok(block.cycle === 1 || block.state === 'sending', 'cycle 2 never confirmed complete');
    target.faults.failFlushes = 0;
    runCycle(volume);
    assert.equal(farControl(target).cycle, 2);
    volume.close();
  });

  it('a far side replaced by a copy older than a completed cycle is E_CORRUPT before anything is written', () => {
    const { volume, dir, target } = create();
    const older = target.snapshot(); // cycle 0 complete
    volume.writeRegion(0, labelBytes('r0', geometry.regionSize));
    runCycle(volume);
    volume.close();
    target.replaceWith(older);
    const reopened = openAgain(dir, target);
    target.log.length = 0;
    assert.throws(
      () => reopened.readRegion(0, 'secondary'),
      (error: unknown) => isLinkError('E_CORRUPT')(error) && /lost completed cycles/.test((error as Error).message),
    );
    reopened.writeRegion(1, labelBytes('r1', geometry.regionSize));
    reopened.startCycle();
    assert.throws(() => runCycle(reopened), isLinkError('E_CORRUPT'));
    assert.equal(target.log.filter((line) => line.startsWith('write')).length, 0);
    reopened.close();
  });

  it('a far side that lost a batch of the running cycle it had confirmed gets every region of C again', () => {
    const { volume, target } = create();
    for (const region of [1, 6]) volume.writeRegion(region, labelBytes(`r${region}`, geometry.regionSize));
    volume.startCycle();
    const atSwap = primaryImage(volume);
    const older = target.snapshot();
    volume.transferRegions([1]);
    target.replaceWith(older); // restarted with an image from before the batch
    target.dropConnections();
    volume.transferRegions([6]);
    assert.throws(() => volume.completeCycle(), isLinkError('E_IO', true));
    assert.deepEqual(volume.unsentRegions(), [1, 6]);
    runCycle(volume);
    assert.deepEqual(farImage(target), atSwap);
    volume.close();
  });

  it('an empty cycle on a new connection sends its start block, then (after its reply) the complete one', () => {
    const { volume, target } = create();
    volume.startCycle();
    target.dropConnections();
    target.log.length = 0;
    runCycle(volume);
    const offset = controlOffsetOf(geometry);
    assert.deepEqual(target.log, [
      'connect',
      `read ${offset} 4096`,
      `write ${offset} 4096`,
      `write ${offset} 4096`,
      'flush',
    ]);
    assert.deepEqual([farControl(target).cycle, farControl(target).state], [1, 'complete']);
    volume.close();
  });

  it('a far side ahead of the volume (another primary) is E_CORRUPT', () => {
    const { volume, target } = create();
    const block = { ...farControl(target), cycle: 9, state: 'complete' as const };
    target.bytes.set(encodeControlBlock(block), controlOffsetOf(geometry));
    target.dropConnections();
    assert.throws(
      () => volume.readRegion(0, 'secondary'),
      (error: unknown) => isLinkError('E_CORRUPT')(error) && /ahead of this volume/.test((error as Error).message),
    );
    volume.close();
  });
});

describe('NbdReplica: scrub', () => {
  it('finds a region of the export that rotted and a rotten page of DIR/remote-digests, and repairs the page', () => {
    const { volume, dir, target } = create();
    for (const region of [1, 5]) volume.writeRegion(region, labelBytes(`r${region}`, geometry.regionSize));
    runCycle(volume);
    target.bytes[5 * geometry.regionSize + 7] ^= 0x40; // the far side's disk rots
    const report = volume.scrub({ repair: false });
    assert.deepEqual(
      report.findings.map((finding) => [finding.file, finding.region]),
      [[url, 5]],
    );
    assert.equal(replicaOf(volume).verifyRegion(1), true);
    assert.equal(replicaOf(volume).verifyRegion(5), false);
    volume.close();
    flipByte(join(dir, 'remote-digests'), 4); // the entry of region 1
    const reopened = openAgain(dir, target);
    const rotten = reopened.scrub({ repair: true });
    assert.ok(rotten.findings.some((finding) => finding.file === join(dir, 'remote-digests') && finding.repaired));
    assert.deepEqual(replicaOf(reopened).digestPageProblems(), []);
    reopened.close();
  });
});

describe('NbdReplica: open, read-only, status', () => {
  it('open never contacts the far side; a read-only open reads and writes nothing there', () => {
    const { volume, dir, target } = create();
    volume.writeRegion(2, labelBytes('r2', geometry.regionSize));
    runCycle(volume);
    volume.close();
    target.faults.refuseConnects = 1_000;
    target.log.length = 0;
    const unreachable = openAgain(dir, target);
    unreachable.writeRegion(3, labelBytes('r3', geometry.regionSize));
    assert.equal(replicaOf(unreachable).linkStatus?.().state, 'idle');
    assert.equal(target.log.length, 0, target.log.join('\n'));
    unreachable.close();
    target.faults.refuseConnects = 0;
    const reader = openAgain(dir, target, true);
    assert.deepEqual(reader.readRegion(2, 'secondary'), labelBytes('r2', geometry.regionSize));
    const notReads: string[] = target.log.filter((line) => !line.startsWith('read') && line !== 'connect');
    assert.deepEqual(notReads, []);
    reader.close();
  });

  it('a read-only export is refused for writing at once (E_IO, no retries) and serves a read-only open', () => {
    const { volume, dir, target } = create();
    volume.writeRegion(2, labelBytes('r2', geometry.regionSize));
    volume.startCycle();
    target.readOnly = true;
    target.dropConnections();
    target.log.length = 0;
    assert.throws(
      () => runCycle(volume),
      (error: unknown) => isLinkError('E_IO')(error) && /read-only export/.test((error as Error).message),
    );
    assert.deepEqual(target.log, ['connect']);
    volume.close();
    const reader = openAgain(dir, target, true);
    assert.deepEqual(reader.readRegion(3, 'secondary'), new Uint8Array(geometry.regionSize));
    reader.close();
  });

  it('probeLink reads the control block and reports the far side; a refused probe reports down with the error', () => {
    const { volume, target } = create();
    volume.writeRegion(2, labelBytes('r2', geometry.regionSize));
    runCycle(volume);
    target.dropConnections();
    const status = replicaOf(volume).probeLink?.();
    assert.equal(status?.state, 'up');
    assert.equal(status?.far?.completedCycle, 1);
    assert.ok((status?.far?.swapTimeMs ?? 0) > 0);
    target.faults.deadRequests = 1; // the connection died while idle: the probe connects again at once
    assert.equal(replicaOf(volume).probeLink?.().state, 'up');
    target.dropConnections();
    target.faults.refuseConnects = 1;
    const down = replicaOf(volume).probeLink?.();
    assert.equal(down?.state, 'down');
    assert.match(down?.lastError ?? '', /ECONNREFUSED/);
    assert.equal(down?.failedAttempts, 1);
    volume.close();
  });
});
