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
// cycle of each, make verify three and two, and b again under `cowmap serve`, whose
// completion lines give the primary's own count of link faults and resent regions.

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { atLevel } from '../../../harness/testLevel.ts';
import { freshDir, missing, root, run } from '../../nbd/nbdTestTools.ts';
import { startServeChild } from '../../nbd/serveChild.ts';
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

/** The faulty far side of b: its export, arming its faults, what it injected, its end. */
interface Faulty {
  readonly server: SecondaryServer;
  readonly exportFile: string;
  /** Faults on from now: every second FLUSH, and 40 % of WRITEs inside the windows. */
  arm(): void;
  counts(): string;
  stop(): Promise<void>;
}

async function startFaulty(name: string): Promise<Faulty> {
  const exportFile = makeExportFile(join(root, `${name}.img`), geometry);
  const trigger = join(root, `${name}.faults-on`);
  const flaky: FlakyFlush = {
    failEvery: 2,
    counterFile: join(root, `${name}.flushes`),
    triggerFile: join(root, `${name}.flush-faults-on`),
  };
  const errorParams = ['error=EIO', 'error-pwrite-rate=40%', `error-pwrite-file=${trigger}`];
  const server = await startNbdkitFlakyFlush(
    exportFile,
    { kind: 'unix', socketPath: join(root, `${name}.sock`) },
    flaky,
    {
      filters: ['error'],
      params: [...errorParams, 'error-zero-rate=40%', `error-zero-file=${trigger}`],
    },
  );
  let windows: { stop(): Promise<void> } | null = null;
  return {
    server,
    exportFile,
    arm: () => {
      writeFileSync(flaky.triggerFile!, '');
      windows = startFaultWindows(trigger, 100, 200);
    },
    counts: () => {
      const flushes = flushesFailed(flaky);
      assert.ok(flushes >= 1, `every second FLUSH failed: ${flushes}`);
      return `${injectedErrors(server)} injected WRITE error(s) and ${flushes} failed FLUSH(es)`;
    },
    stop: async () => {
      await windows?.stop();
      await server.kill();
    },
  };
}

describe('cycles to a faulty or slow NBD export', () => {
  test('b. 40 % of WRITEs and every second FLUSH fail: each cycle completes, and completes right', {
    skip: missing('nbdkit', 'cmp', 'dd'),
  }, async (t) => {
    const faulty = await startFaulty('b');
    try {
      // init claims the export without faults; the cycles run with them.
      const outputs = await cyclesAgainst(faulty.server, faulty.exportFile, atLevel(1, 3), () => faulty.arm());
      const note = `b: ${outputs.length} cycle(s) completed right over ${faulty.counts()}: ${outputs.join('; ')}`;
      t.diagnostic(note);
      process.stderr.write(`# ${note}\n`);
    } finally {
      await faulty.stop();
    }
  });

  test('b under cowmap serve: every cycle completes right; the primary reports its link faults and resends', {
    skip: atLevel('make verify only (COWMAP_TEST_LEVEL=full)', undefined) ?? missing('nbdkit', 'qemu-io', 'cmp', 'dd'),
  }, async (t) => {
    const faulty = await startFaulty('bs');
    const dir = freshDir();
    const socket = join(root, 'bs.serve.sock');
    await initRemote(dir, geometry, faulty.server.url);
    faulty.arm();
    const serve = startServeChild([dir, '--socket', socket, '--batch-regions', '4']);
    try {
      await serve.waitFor(/^serving /);
      const completions: string[] = [];
      for (let round = 1; round <= 3; round++) {
        const write = `write -P ${round * 16 + 1} ${round * 393216} 458752`;
        await run('qemu-io', ['-f', 'raw', '-c', write, '-c', 'flush', `nbd+unix:///?socket=${socket}`]);
        serve.child.kill('SIGUSR1');
        completions.push(await serve.waitFor(new RegExp(`^cycle ${round}: completed`), 120_000));
        const same = await samePrefix(faulty.exportFile, join(dir, 'primary'), sizeBytes);
        assert.ok(same, `cycle ${round}: S = P@swap\n${serve.lines.join('\n')}`);
      }
      const reported = completions.map((line) => line.match(/(\d+) link fault\(s\), (\d+) region\(s\) resent$/));
      const faults = reported.reduce((sum, match) => sum + Number(match?.[1] ?? 0), 0);
      const resent = reported.reduce((sum, match) => sum + Number(match?.[2] ?? 0), 0);
      const note =
        `b under serve: 3 cycles completed right; the primary reported ${faults} link fault(s) (each a slice or ` +
        `completion retried after a backoff) and ${resent} region(s) resent, over ${faulty.counts()}`;
      t.diagnostic(note);
      process.stderr.write(`# ${note}\n`);
    } finally {
      await serve.stop();
      await faulty.stop();
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
