// End to end, scenarios b and c: cycles to an NBD export that fails a share of its
// WRITEs (nbdkit's error filter, 40 % in windows) and every second FLUSH (nbdkit's eval plugin
// over a file: 1.32's error filter cannot fail a FLUSH), and to one that delays its
// WRITEs (nbdkit's delay filter, 5 ms a request). Every `cowmap cycle` still
// completes, and after each the export's file equals the primary (cmp -n SIZE):
// never a completed cycle with a wrong image. The WRITE faults come in windows (100 ms
// on, 200 ms off): a batch is several WRITEs and a FLUSH that must all succeed in one
// attempt, and at a steady 40 % a run of failures can outlast the retry budget; the
// windows bound it. The faults the far side injected (and so the retries the primary
// made) are printed for the notes. The error filter has no seed: its share of
// failures varies from run to run, the FLUSH schedule does not. make test runs a
// cycle of each, make verify three and two.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { atLevel } from '../../../harness/testLevel.ts';
import { freshDir, missing, root } from '../../nbd/nbdTestTools.ts';
import { seedFrom, testRandom } from '../../nbd/testRandom.ts';
import { controlBlockOf, cowmap, makeExportFile, samePrefix, seededWrites, initRemote } from './remoteCli.ts';
import {
  type FlakyFlush,
  flushesFailed,
  freePort,
  injectedErrors,
  type SecondaryServer,
  startNbdkitFile,
  startFaultWindows,
  startNbdkitFlakyFlush,
} from './secondaryServers.ts';

const geometry = { regions: 64, regionSize: 65536 }; // 4 MiB
const sizeBytes = geometry.regions * geometry.regionSize;
const seed = seedFrom('COWMAP_E2E_SEED');
process.stderr.write(`# remote end-to-end b, c: seed ${seed} (COWMAP_E2E_SEED=${seed} repeats it)\n`);

/** init, then `rounds` of seeded writes and `cowmap cycle`, each checked: S = P@swap and the block says complete. */
async function cyclesAgainst(
  server: SecondaryServer,
  exportFile: string,
  rounds: number,
  onInit: () => void,
): Promise<string[]> {
  const dir = freshDir();
  const random = testRandom(seed);
  const outputs: string[] = [];
  await initRemote(dir, geometry, server.url);
  onInit();
  for (let round = 1; round <= rounds; round++) {
    await seededWrites(dir, root, random, geometry, 4);
    const started = performance.now();
    const output = await cowmap('cycle', dir);
    outputs.push(`${output.split('\n')[0]} (${((performance.now() - started) / 1000).toFixed(2)} s)`);
    assert.match(output, new RegExp(`^ran cycle ${round}: `), output);
    assert.ok(
      await samePrefix(exportFile, join(dir, 'primary'), sizeBytes),
      `seed ${seed}: round ${round}: S = P@swap`,
    );
    const block = controlBlockOf(exportFile, geometry);
    assert.deepEqual(
      [block?.cycle, block?.state],
      [round, 'complete'],
      `seed ${seed}: round ${round}: the control block`,
    );
  }
  return outputs;
}

describe('cycles to a faulty or slow NBD export', () => {
  test('b. 40 % of WRITEs and every second FLUSH fail: each cycle completes, and completes right', {
    skip: missing('nbdkit', 'cmp', 'dd'),
  }, async (t) => {
    const exportFile = makeExportFile(join(root, 'b.img'), geometry);
    const trigger = join(root, 'b.faults-on');
    // Every second FLUSH fails, windows or not (from the cycles on: the counter starts with the windows).
    const flaky: FlakyFlush = {
      failEvery: 2,
      counterFile: join(root, 'b.flushes'),
      triggerFile: join(root, 'b.flush-faults-on'),
    };
    const errorParams = ['error=EIO', 'error-pwrite-rate=40%', `error-pwrite-file=${trigger}`];
    const server = await startNbdkitFlakyFlush(exportFile, { kind: 'unix', socketPath: join(root, 'b.sock') }, flaky, {
      filters: ['error'],
      params: [...errorParams, 'error-zero-rate=40%', `error-zero-file=${trigger}`],
    });
    const windows: { current: { stop(): Promise<void> } | null } = { current: null };
    try {
      // init claims the export without faults; the cycles run with them.
      const outputs = await cyclesAgainst(server, exportFile, atLevel(1, 3), () => {
        writeFileSync(flaky.triggerFile!, '');
        windows.current = startFaultWindows(trigger, 100, 200);
      });
      const flushes = flushesFailed(flaky);
      const writes = injectedErrors(server);
      assert.ok(flushes >= 1, `every second FLUSH of the cycles failed: ${flushes}`);
      const note =
        `b: ${outputs.length} cycle(s) completed right over ${writes} injected WRITE error(s) and ${flushes} failed FLUSH(es), ` +
        `each retried by the primary: ${outputs.join('; ')}`;
      t.diagnostic(note);
      process.stderr.write(`# ${note}\n`);
    } finally {
      await windows.current?.stop();
      await server.kill();
    }
  });

  test('c. a 5 ms delay on every WRITE and WRITE_ZEROES: cycles complete and are right', {
    skip: missing('nbdkit', 'cmp'),
  }, async (t) => {
    const exportFile = makeExportFile(join(root, 'c.img'), geometry);
    const server = await startNbdkitFile(
      exportFile,
      { kind: 'tcp', port: await freePort() },
      {
        filters: ['delay'],
        params: ['delay-write=5ms', 'delay-zero=5ms'],
      },
    );
    try {
      const outputs = await cyclesAgainst(server, exportFile, atLevel(1, 2), () => {});
      const note = `c: ${outputs.length} cycle(s) through a 5 ms WRITE delay: ${outputs.join('; ')}`;
      t.diagnostic(note);
      process.stderr.write(`# ${note}\n`);
    } finally {
      await server.kill();
    }
  });
});
