// `cowmap serve` with a secondary whose link fails (cycles.ts, linkRetry.ts): a
// slice or a completion that throws ReplicaLinkError pauses the cycle, the server
// keeps serving clients, the cycle is retried with a bounded backoff and completes
// with S = P@swap; a completion refused with lostSent resends the regions; one log
// line per change of the link's state. The faults come from a replica wrapper that
// fails on cue (no network here: the NBD secondary has end-to-end tests of its own,
// impl/remote/endToEnd/).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ReplicaLinkError } from '../errors.ts';
import { NodeStorage } from '../nodeStorage.ts';
import type { Replica } from '../replica.ts';
import type { LinkStatus } from '../remote/linkStatus.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import type { VolumeParts } from '../volumeParts.ts';
import { CycleRunner } from './cycles.ts';
import { backoffDelayMs, cycleRetryBackoff, LinkRetry } from './linkRetry.ts';
import { NbdServer } from './server.ts';
import { NbdTestClient } from './testClient.ts';
import { linkStatusOf } from './volumeLink.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-cycle-retry-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** What the flaky replica does on its next calls. */
interface FaultPlan {
  /** writeRegions calls to fail (before writing anything). */
  writes: number;
  /** confirmCycle calls to fail; with `lostSent` they say the far side lost confirmed regions. */
  confirms: number;
  lostSent: boolean;
  /** Every call fails until this time (ms since the epoch). */
  downUntilMs: number;
  failed: number;
}

/** A FileReplica that throws ReplicaLinkError as the plan says, and reports a link status. */
function flakyReplica(inner: Replica, plan: FaultPlan): Replica {
  let lastError: string | null = null;
  const fault = (what: string, lostSent = false): ReplicaLinkError => {
    plan.failed++;
    lastError = `${what}: ECONNREFUSED`;
    return new ReplicaLinkError('E_IO', lastError, { lostSent });
  };
  const linkStatus = (): LinkStatus => ({
    url: 'nbd://127.0.0.1:1/',
    state: Date.now() < plan.downUntilMs ? 'down' : 'up',
    lastError,
    lastErrorAtMs: lastError === null ? null : Date.now(),
    failedAttempts: plan.failed,
    far: null,
  });
  return Object.assign(Object.create(inner) as Replica, {
    writeRegions(regions: readonly number[], contentOf: (region: number) => Uint8Array): void {
      if (Date.now() < plan.downUntilMs) throw fault('connect');
      if (plan.writes > 0) {
        plan.writes--;
        throw fault('WRITE');
      }
      inner.writeRegions(regions, contentOf);
    },
    confirmCycle(cycle: number): void {
      if (Date.now() < plan.downUntilMs) throw fault('connect');
      if (plan.confirms > 0) {
        plan.confirms--;
        throw fault('FLUSH', plan.lostSent);
      }
      inner.confirmCycle(cycle);
    },
    linkStatus,
  });
}

function flakyVolume(regions: number): { volume: ReplicatedVolume; plan: FaultPlan } {
  const plan: FaultPlan = { writes: 0, confirms: 0, lostSent: false, downUntilMs: 0, failed: 0 };
  class FlakyVolume extends ReplicatedVolume {
    constructor(parts: VolumeParts) {
      super({ ...parts, replica: flakyReplica(parts.replica, plan) });
    }
  }
  const volume = FlakyVolume.create(new NodeStorage(), join(root, `v${dirs++}`), { regions, regionSize: 4096 });
  return { volume, plan };
}

/** Fills regions with distinct bytes (the `round` keeps rounds apart). */
function dirty(volume: ReplicatedVolume, regions: readonly number[], round: number): void {
  volume.writeMany(
    regions.map((region) => ({ offset: region * 4096, bytes: new Uint8Array(4096).fill(round * 16 + region + 1) })),
  );
}

/** A runner driven as the server's pump drives it: a step per turn while it is ready. */
function drivenRunner(volume: ReplicatedVolume, lines: string[]): CycleRunner {
  let scheduled = false;
  const wake = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      if (!runner.isRunning) return;
      runner.step();
      wake();
    });
  };
  const runner = new CycleRunner(volume, {
    batchRegions: 2,
    log: (line) => lines.push(line),
    wake,
    retryBackoff: { firstMs: 5, maxMs: 20 },
  });
  return runner;
}

function assertSecondaryIsPrimary(volume: ReplicatedVolume): void {
  for (let region = 0; region < volume.regions; region++)
    assert.deepEqual(volume.readRegion(region, 'secondary'), volume.readRegion(region, 'primary'), `region ${region}`);
}

test('the backoff doubles from 0.5 s to 30 s and starts again after a success', () => {
  const delays = [1, 2, 3, 4, 5, 6, 7, 8, 60].map((attempt) => backoffDelayMs(cycleRetryBackoff, attempt));
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  let nowMs = 1000;
  const retry = new LinkRetry({ firstMs: 100, maxMs: 400 }, () => nowMs);
  const error = new ReplicaLinkError('E_IO', 'connect: ECONNREFUSED');
  assert.deepEqual(retry.failed(error), { kind: 'down', delayMs: 100 });
  nowMs += 100;
  assert.deepEqual(retry.failed(error), { kind: 'same', delayMs: 200 });
  nowMs += 200;
  assert.deepEqual(retry.failed(new ReplicaLinkError('E_IO', 'FLUSH: EIO reply')), { kind: 'changed', delayMs: 400 });
  assert.deepEqual(retry.failed(error), { kind: 'changed', delayMs: 400 });
  assert.equal(retry.status.downSinceMs, 1000);
  nowMs += 50;
  assert.deepEqual(retry.succeeded(), { kind: 'back', downMs: 350, failedAttempts: 4 });
  assert.deepEqual(retry.succeeded(), { kind: 'fine' });
  assert.deepEqual(retry.failed(error), { kind: 'down', delayMs: 100 });
  assert.throws(() => new LinkRetry({ firstMs: 0, maxMs: 10 }));
});

test('slices that fail pause the cycle; it is retried, completes, and logs the fault and the recovery once each', async () => {
  const { volume, plan } = flakyVolume(8);
  const lines: string[] = [];
  const runner = drivenRunner(volume, lines);
  dirty(volume, [0, 1, 2, 3, 4, 5], 1);
  plan.writes = 3;
  runner.request();
  await runner.whenIdle();
  assert.equal(runner.failure, null);
  assert.equal(runner.lastCompletedCycle, 1);
  assertSecondaryIsPrimary(volume);
  const down = lines.filter((line) => line.includes('link down'));
  assert.equal(down.length, 1, lines.join('\n'));
  assert.match(
    down[0]!,
    /^cycle 1: link down: E_IO: WRITE: ECONNREFUSED; paused, clients still served; retrying in 0\.005 s/,
  );
  assert.equal(
    lines.filter((line) => line.includes('link back after 3 failed attempt(s)')).length,
    1,
    lines.join('\n'),
  );
  assert.match(lines.at(-1)!, /^cycle 1: completed, sent 6 region\(s\), .*, 3 link fault\(s\), 0 region\(s\) resent$/);
  const retry = runner.retryStatus;
  assert.deepEqual([retry.paused, retry.failedAttempts, retry.faultsTotal, retry.resends], [false, 0, 3, 0]);
  volume.close();
});

test('a completion refused with lostSent sends every region of C again, then completes', async () => {
  const { volume, plan } = flakyVolume(8);
  const lines: string[] = [];
  const runner = drivenRunner(volume, lines);
  dirty(volume, [1, 3, 5], 1);
  plan.confirms = 1;
  plan.lostSent = true;
  const sent: number[][] = [];
  const transfer = volume.transferRegions.bind(volume);
  volume.transferRegions = (regions) => {
    sent.push([...regions]);
    transfer(regions);
  };
  runner.request();
  await runner.whenIdle();
  assert.equal(runner.failure, null);
  assert.deepEqual(sent, [[1, 3], [5], [1, 3], [5]], 'C sent twice: before and after the far side lost it');
  assertSecondaryIsPrimary(volume);
  assert.ok(
    lines.includes('cycle 1: the secondary lost regions it had confirmed; 3 region(s) to send again'),
    lines.join('\n'),
  );
  assert.deepEqual([runner.retryStatus.resends, runner.retryStatus.regionsResent], [1, 3]);
  assert.equal(lines.filter((line) => line.includes('link down')).length, 0, 'the first loss is resent at once');

  // A far side that loses them again is waited for, as a link fault (never a busy loop).
  dirty(volume, [2], 2);
  plan.confirms = 2;
  sent.length = 0;
  lines.length = 0;
  runner.request();
  await runner.whenIdle();
  assert.deepEqual(sent, [[2], [2], [2]]);
  assert.equal(lines.filter((line) => line.includes('link down')).length, 1, lines.join('\n'));
  assertSecondaryIsPrimary(volume);
  volume.close();
});

test('any other error still stops the cycles', async () => {
  const { volume } = flakyVolume(4);
  const lines: string[] = [];
  const runner = drivenRunner(volume, lines);
  dirty(volume, [0], 1);
  volume.transferRegions = () => {
    throw new Error('disk on fire');
  };
  runner.request();
  await runner.whenIdle();
  assert.equal(runner.failure, 'Error: disk on fire');
  assert.equal(runner.hasCycle, false);
  volume.close();
});

test('cowmap serve: while the link is down the cycle waits and clients are answered; then it completes', async () => {
  const { volume, plan } = flakyVolume(16);
  const lines: string[] = [];
  const server = new NbdServer(volume, { log: (line) => lines.push(line), statusFile: true });
  const port = (await server.listen({ port: 0 })) as number;
  const client = await NbdTestClient.connect({ port });
  try {
    await client.write(0, new Uint8Array(8192).fill(7));
    plan.downUntilMs = Date.now() + 700;
    server.requestCycle();
    // The first attempt fails at once; the retry waits 0.5 s, then 1 s.
    const answered: number[] = [];
    for (let round = 0; round < 5; round++) {
      const started = performance.now();
      await client.write(16384 + round * 4096, new Uint8Array(4096).fill(round + 1));
      assert.deepEqual(await client.read(0, 4), Buffer.from([7, 7, 7, 7]));
      answered.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    const status = linkStatusOf(volume);
    assert.equal(status?.state, 'down');
    assert.equal(server.cycles.hasCycle, true, 'the cycle is still open while the link is down');
    assert.equal(server.cycles.retryStatus.paused, true);
    await server.whenIdle();
    assert.equal(server.failure, null);
    process.stderr.write(
      `# client round trips while the cycle waited: ${answered.map((ms) => ms.toFixed(1)).join(', ')} ms\n`,
    );
  } finally {
    await client.disconnect();
    await server.close();
  }
  assert.equal(lines.filter((line) => line.includes('link down')).length, 1, lines.join('\n'));
  assert.equal(lines.filter((line) => line.includes('link back')).length, 1, lines.join('\n'));
  // The cycle sent P@swap: the two first regions; the writes during the pause wait for the next cycle.
  assert.deepEqual(volume.readRegion(0, 'secondary'), new Uint8Array(4096).fill(7));
  assert.deepEqual(volume.readRegion(4, 'secondary'), new Uint8Array(4096));
  assert.deepEqual(volume.nextRegions(), [4, 5, 6, 7, 8]);
  volume.close();
});
