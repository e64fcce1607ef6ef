// End to end, scenario d: the secondary (nbdkit's file plugin, slowed by its delay
// filter so that a cycle lasts long enough to be cut) killed with SIGKILL of its
// process group in the middle of a cycle that `cowmap serve` runs, then started
// again: the cycle pauses, the server keeps serving, the cycle completes after the
// restart and the export's file equals the primary (P@swap: nothing was written
// after the swap). Then the far side restarted with an OLDER copy of its file:
// mid-cycle (it lost batches it had confirmed) the primary sends the cycle again;
// after a completed cycle (it lost a completed cycle) `cowmap cycle` refuses with
// E_CORRUPT and writes nothing there. A far side that hangs (SIGSTOP) mid-cycle: the
// slice times out and the cycle waits like after any fault. Never a completed cycle
// with a wrong image.

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { atLevel } from '../../../harness/testLevel.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { freshDir, missing, root, run } from '../../nbd/nbdTestTools.ts';
import { type ServeChild, startServeChild } from '../../nbd/serveChild.ts';
import { seedFrom, testRandom } from '../../nbd/testRandom.ts';
import {
  controlBlockOf,
  cowmap,
  cowmapMayFail,
  makeExportFile,
  samePrefix,
  seededWrites,
  initRemote,
} from './remoteCli.ts';
import { type SecondaryServer, startNbdkitFile } from './secondaryServers.ts';

const geometry = { regions: 64, regionSize: 65536 }; // 4 MiB
const sizeBytes = geometry.regions * geometry.regionSize;
const seed = seedFrom('COWMAP_E2E_SEED');
process.stderr.write(`# remote end-to-end d: seed ${seed} (COWMAP_E2E_SEED=${seed} repeats it)\n`);

const testLevelSkip = 'make verify only (COWMAP_TEST_LEVEL=full)';

interface Setup {
  dir: string;
  exportFile: string;
  secondary: SecondaryServer;
  serve: ServeChild | null;
  socket: string;
}

/** A slow secondary (a WRITE takes 3 ms more), a volume on it, and `cowmap serve` with one region per slice. */
async function setUp(name: string, serve: boolean): Promise<Setup> {
  const exportFile = makeExportFile(join(root, `${name}.img`), geometry);
  const secondary = await startNbdkitFile(
    exportFile,
    { kind: 'unix', socketPath: join(root, `${name}.far.sock`) },
    {
      filters: ['delay'],
      params: ['delay-write=3ms'],
    },
  );
  const dir = freshDir();
  await initRemote(dir, geometry, secondary.url);
  const socket = join(root, `${name}.sock`);
  if (!serve) return { dir, exportFile, secondary, serve: null, socket };
  const child = startServeChild([dir, '--socket', socket, '--batch-regions', '1']);
  await child.waitFor(/^serving /);
  // serve probed the far side before serving: its state is in the log.
  const probed = child.lines.find((line) => line.startsWith('secondary '));
  assert.equal(probed, `secondary ${secondary.url}: link up; far side at cycle 0`, child.lines.join('\n'));
  return { dir, exportFile, secondary, serve: child, socket };
}

async function tearDown(setup: Setup): Promise<void> {
  await setup.serve?.stop();
  await setup.secondary.kill();
}

/** Fills the first `bytes` of the volume with `pattern` through serve's export (qemu-io), flushed. */
async function fillThroughServe(setup: Setup, pattern: number, bytes = sizeBytes): Promise<void> {
  const socket = `nbd+unix:///?socket=${setup.socket}`;
  await run('qemu-io', ['-f', 'raw', '-c', `write -P ${pattern} 0 ${bytes}`, '-c', 'flush', socket]);
}

/** Runs a cycle (SIGUSR1) and resolves once its swap line is out. */
async function startCycle(serve: ServeChild, cycle: number): Promise<void> {
  serve.child.kill('SIGUSR1');
  await serve.waitFor(new RegExp(`^cycle ${cycle}: swap, `));
}

/** Polls the export's control block until the running cycle has `batches` batches confirmed there. */
async function untilBatches(exportFile: string, cycle: number, batches: number): Promise<void> {
  for (let tries = 0; tries < 1000; tries++) {
    const block = controlBlockOf(exportFile, geometry);
    if (block !== null && block.cycle === cycle && block.state === 'sending' && block.batch >= batches) return;
    assert.ok(!(block?.cycle === cycle && block.state === 'complete'), `cycle ${cycle} completed before the kill`);
    await sleep(5);
  }
  assert.fail(`cycle ${cycle} never reached ${batches} confirmed batches`);
}

describe('the secondary killed and restarted', () => {
  test('d1. mid-cycle under cowmap serve: the cycle pauses, completes after the restart, S = P@swap', {
    skip: missing('nbdkit', 'qemu-io', 'cmp'),
  }, async (t) => {
    const setup = await setUp('d1', true);
    const serve = setup.serve!;
    try {
      await fillThroughServe(setup, 0xab);
      await startCycle(serve, 1);
      await untilBatches(setup.exportFile, 1, 4);
      await setup.secondary.kill();
      await serve.waitFor(/^cycle 1: link down: /);
      // Clients are served while the far side is away.
      await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0xab 0 65536', `nbd+unix:///?socket=${setup.socket}`]);
      // cowmap status (from the server's status file, rewritten at the pause) says the link is down and the cycle waits.
      const paused = await cowmap('status', setup.dir);
      assert.match(
        paused,
        /^link +down, \d+ failed attempt\(s\) since the last success; last error \d+\.\d s ago: \S/m,
      );
      assert.match(paused, /^retries +cycle paused after [1-9]\d* failed attempt\(s\)/m);
      await setup.secondary.restart();
      const completed = await serve.waitFor(/^cycle 1: completed/, 30_000);
      assert.ok(
        serve.lines.some((line) => /^cycle 1: link back after \d+ failed attempt/.test(line)),
        serve.lines.join('\n'),
      );
      assert.match(completed, /, [1-9]\d* link fault\(s\), 0 region\(s\) resent$/);
      assert.ok(
        await samePrefix(setup.exportFile, join(setup.dir, 'primary'), sizeBytes),
        'S = P@swap after the restart',
      );
      const status = JSON.parse(await cowmap('status', setup.dir, '--json'));
      assert.equal(status.link.state, 'up', JSON.stringify(status.link));
      assert.equal(status.link.farCompletedCycle, 1);
      assert.ok(status.server.retry.faultsTotal >= 1);
      t.diagnostic(`d1: ${serve.lines.filter((line) => line.startsWith('cycle 1')).join(' | ')}`);
    } finally {
      await tearDown(setup);
    }
  });

  // make verify only: make test has the refusal (d3), and cycleRetry.test.ts the resend with a replica that fails on cue.
  test('d2. mid-cycle, restarted with the copy of before the cycle: the primary sends the cycle again', {
    skip: atLevel(testLevelSkip, undefined) ?? missing('nbdkit', 'qemu-io', 'cmp'),
  }, async (t) => {
    const setup = await setUp('d2', true);
    const serve = setup.serve!;
    const older = join(root, 'd2.older.img');
    try {
      await fillThroughServe(setup, 0x11, 8 * geometry.regionSize);
      await startCycle(serve, 1);
      await serve.waitFor(/^cycle 1: completed/, 30_000);
      copyFileSync(setup.exportFile, older); // (1, complete)
      await fillThroughServe(setup, 0x22);
      await startCycle(serve, 2);
      await untilBatches(setup.exportFile, 2, 4);
      await setup.secondary.kill();
      copyFileSync(older, setup.exportFile);
      await setup.secondary.restart();
      const completed = await serve.waitFor(/^cycle 2: completed/, 30_000);
      assert.ok(
        serve.lines.some((line) =>
          /^cycle 2: the secondary lost regions it had confirmed; \d+ region\(s\) to send again$/.test(line),
        ),
        serve.lines.join('\n'),
      );
      assert.match(completed, /, [1-9]\d* link fault\(s\), [1-9]\d* region\(s\) resent$/);
      assert.ok(
        await samePrefix(setup.exportFile, join(setup.dir, 'primary'), sizeBytes),
        'S = P@swap after the resend',
      );
      t.diagnostic(`d2: ${serve.lines.filter((line) => line.startsWith('cycle 2')).join(' | ')}`);
    } finally {
      await tearDown(setup);
    }
  });

  test('d4. a far side that hangs mid-cycle (SIGSTOP): the slice times out, the cycle pauses, and completes once it wakes', {
    skip: atLevel(testLevelSkip, undefined) ?? missing('nbdkit', 'qemu-io', 'cmp'),
  }, async (t) => {
    const setup = await setUp('d4', true);
    const serve = setup.serve!;
    try {
      await fillThroughServe(setup, 0x44);
      await startCycle(serve, 1);
      await untilBatches(setup.exportFile, 1, 2);
      setup.secondary.signal('SIGSTOP');
      // serve's request timeout (10 s) ends the stalled slice; then the cycle waits on its timer.
      const down = await serve.waitFor(/^cycle 1: link down: /, 30_000);
      await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x44 0 65536', `nbd+unix:///?socket=${setup.socket}`]);
      setup.secondary.signal('SIGCONT');
      await serve.waitFor(/^cycle 1: completed/, 60_000);
      assert.ok(await samePrefix(setup.exportFile, join(setup.dir, 'primary'), sizeBytes), 'S = P@swap after the hang');
      t.diagnostic(`d4: ${down}`);
    } finally {
      setup.secondary.signal('SIGCONT');
      await tearDown(setup);
    }
  });

  // At the full level (make test's budget): impl/remote/farRewind.test.ts refuses the same older image in process.
  test('d3. restarted with the copy of a completed cycle ago: cowmap cycle refuses (E_CORRUPT) and writes nothing there', {
    skip: atLevel(testLevelSkip, undefined) ?? missing('nbdkit', 'cmp'),
  }, async () => {
    const setup = await setUp('d3', false);
    const older = join(root, 'd3.older.img');
    const random = testRandom(seed);
    try {
      copyFileSync(setup.exportFile, older); // (0, complete): init's
      await seededWrites(setup.dir, root, random, geometry, 2);
      await cowmap('cycle', setup.dir);
      await setup.secondary.kill();
      copyFileSync(older, setup.exportFile);
      await setup.secondary.restart();
      await seededWrites(setup.dir, root, random, geometry, 2);
      const refused = await cowmapMayFail('cycle', setup.dir);
      assert.equal(refused.status, 1, refused.stdout);
      assert.match(refused.stderr, /^E_CORRUPT: /, `seed ${seed}`);
      assert.ok(readFileSync(setup.exportFile).equals(readFileSync(older)), 'nothing was written to the older copy');
      const status = await cowmap('status', setup.dir);
      assert.match(status, /^phase +replicating \(cycle 2/m, 'cycle 2 did not complete');
    } finally {
      await tearDown(setup);
    }
  });
});
