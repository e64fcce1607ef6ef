// NbdReplica over real sockets: nbdkit's file plugin on a Unix socket (skipped without
// nbdkit), the NBD client in its worker thread, the CLI as users run it. The logic in
// detail is nbdReplica.test.ts's, over an in-memory export.

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, type TestContext } from 'node:test';
import { ReplicaLinkError } from '../errors.ts';
import { volumeSize } from '../geometry.ts';
import { cowmapScript, freshDir, missing, root, run } from '../nbd/nbdTestTools.ts';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { runCycle } from '../runCycle.ts';
import { labelBytes } from '../testFiles.ts';
import { atLevel } from '../../harness/testLevel.ts';
import { controlOffsetOf, decodeControlBlock, encodeControlBlock, exportSizeOf } from './controlBlock.ts';

const geometry = { regions: 16, regionSize: 4096 };
const exportSize = exportSizeOf(geometry);
/** Short enough for a test: a refused connect gives up within a second. */
const testLink = { retryBudgetMs: 600, backoffFirstMs: 20, backoffMaxMs: 100, connectTimeoutMs: 2_000 };
const skip = missing('nbdkit');
/** The cases past the first run at the full level only: each starts a worker and servers (seconds of make test). */
const fullOnly = { skip: atLevel<string | undefined>('make verify only (COWMAP_TEST_LEVEL=full)', undefined) };
let servers = 0;

interface Server {
  readonly url: string;
  readonly socket: string;
  stop(): Promise<void>;
}

/** nbdkit in its own process group on a fresh Unix socket; stopped after the test, also when it fails. */
async function startNbdkit(t: TestContext, pluginArgs: string[], socket = join(root, `nbdkit${servers++}.sock`)) {
  const child: ChildProcess = spawn('nbdkit', ['-f', '-U', socket, ...pluginArgs], {
    detached: true,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      // SIGKILL: on SIGTERM nbdkit waits for its clients, and the volume under test still holds its connection.
      process.kill(-child.pid!, 'SIGKILL');
      await exited;
    }
    rmSync(socket, { force: true });
  };
  t.after(stop);
  for (let waitedMs = 0; !existsSync(socket); waitedMs += 20) {
    if (waitedMs > 10_000 || child.exitCode !== null) throw new Error(`nbdkit did not start on ${socket}`);
    await sleep(20);
  }
  return { url: `nbd+unix:///?socket=${socket}`, socket, stop } satisfies Server;
}

/** A zeroed export file of `size` bytes. */
function exportFile(size = exportSize): string {
  const path = join(root, `export${servers++}.img`);
  writeFileSync(path, new Uint8Array(size));
  return path;
}

function image(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path)).subarray(0, volumeSize(geometry));
}

function primaryImage(volume: ReplicatedVolume): Uint8Array {
  const bytes = new Uint8Array(volumeSize(geometry));
  for (let region = 0; region < geometry.regions; region++)
    bytes.set(volume.readRegion(region), region * geometry.regionSize);
  return bytes;
}

function create(url: string): ReplicatedVolume {
  return ReplicatedVolume.create(new NodeStorage(), freshDir(), geometry, { secondaryUrl: url, link: testLink });
}

describe('NbdReplica against nbdkit file', { skip }, () => {
  it("claims a zero export, and a cycle makes the export's image P@swap", async (t) => {
    const file = exportFile();
    writeFileSync(file, new Uint8Array(volumeSize(geometry)).fill(5)); // the image may hold anything; the control region is zero
    writeFileSync(file, new Uint8Array(exportSize - volumeSize(geometry)), { flag: 'a' });
    const server = await startNbdkit(t, ['file', file]);
    const volume = create(server.url);
    t.after(() => volume.close());
    assert.ok(image(file).every((byte) => byte === 0));
    for (const region of [0, 1, 2, 9, 15]) volume.writeRegion(region, labelBytes(`r${region}`, geometry.regionSize));
    volume.startCycle();
    const atSwap = primaryImage(volume);
    volume.writeRegion(1, labelBytes('after the swap', geometry.regionSize));
    runCycle(volume);
    assert.deepEqual(image(file), atSwap);
    const decoded = decodeControlBlock(new Uint8Array(readFileSync(file)).subarray(controlOffsetOf(geometry)));
    assert.ok(decoded.kind === 'block' && decoded.block.cycle === 1 && decoded.block.state === 'complete');
  });

  it('a batch of more requests than the client may queue goes in windows (review item 4)', fullOnly, async (t) => {
    const small = { regions: 64, regionSize: 4096 };
    const server = await startNbdkit(t, ['memory', String(exportSizeOf(small))]);
    // The client queues at most 4 requests: 32 non-adjacent regions in one batch used to fail every attempt.
    const link = { ...testLink, inFlightMax: 2, issuedMax: 4 };
    const volume = ReplicatedVolume.create(new NodeStorage(), freshDir(), small, { secondaryUrl: server.url, link });
    t.after(() => volume.close());
    const scattered = Array.from({ length: small.regions / 2 }, (_, i) => 2 * i);
    for (const region of scattered) volume.writeRegion(region, labelBytes(`r${region}`, small.regionSize));
    volume.startCycle();
    volume.transferRegions(scattered);
    volume.completeCycle();
    for (const region of [0, 30, 62])
      assert.deepEqual(volume.readRegion(region, 'secondary'), labelBytes(`r${region}`, small.regionSize));
  });

  it('an export the server refuses in the handshake fails at once, not retried for the budget', fullOnly, async (t) => {
    const filter = ['--filter=exportname', 'file', exportFile(), 'exportname=secondary', 'exportname-strict=true'];
    const server = await startNbdkit(t, filter);
    const wrongUrl = `nbd+unix:///other?socket=${server.socket}`;
    assert.throws(
      () => create(wrongUrl),
      (error: unknown) =>
        error instanceof ReplicaLinkError &&
        error.code === 'E_IO' &&
        /NBD_REP_ERR.*\(not retried\)/.test(error.message),
    );
  });

  const refusals: [string, (file: string) => void, RegExp][] = [
    ['a wrong size', () => {}, /needs an export of exactly/],
    [
      "another volume's export",
      (file) => {
        const block = { ...geometry, volumeId: new Uint8Array(16).fill(3), state: 'complete' as const, cycle: 2 };
        const bytes = new Uint8Array(readFileSync(file));
        bytes.set(encodeControlBlock({ ...block, swapTimeMs: 0, batch: 0 }), controlOffsetOf(geometry));
        writeFileSync(file, bytes);
      },
      /another volume/,
    ],
    [
      'a non-empty control region',
      (file) => {
        const bytes = new Uint8Array(readFileSync(file));
        bytes[controlOffsetOf(geometry) + 8] = 1;
        writeFileSync(file, bytes);
      },
      /not a fresh export/,
    ],
  ];
  for (const [what, prepare, message] of refusals) {
    it(`refuses ${what} with E_CORRUPT and writes nothing`, fullOnly, async (t) => {
      const file = exportFile(what === 'a wrong size' ? exportSize + 512 : exportSize);
      prepare(file);
      const before = readFileSync(file);
      const server = await startNbdkit(t, ['file', file]);
      assert.throws(
        () => create(server.url),
        (error: unknown) =>
          error instanceof ReplicaLinkError && error.code === 'E_CORRUPT' && message.test(error.message),
      );
      assert.deepEqual(readFileSync(file), before);
    });
  }

  it(
    'a refused connection past the budget is ReplicaLinkError; the volume stays usable and a later retry completes',
    fullOnly,
    async (t) => {
      const file = exportFile();
      const socket = join(root, `restart${servers++}.sock`);
      const first = await startNbdkit(t, ['file', file], socket);
      const volume = create(first.url);
      t.after(() => volume.close());
      volume.writeRegion(4, labelBytes('r4', geometry.regionSize));
      await first.stop();
      volume.startCycle();
      const atSwap = primaryImage(volume);
      assert.throws(
        () => runCycle(volume),
        (error: unknown) => error instanceof ReplicaLinkError && error.code === 'E_IO',
      );
      volume.writeRegion(5, labelBytes('still taking writes', geometry.regionSize));
      assert.equal(volume.phase, 'replicating');
      await startNbdkit(t, ['file', file], socket);
      runCycle(volume);
      assert.deepEqual(image(file), atSwap);
    },
  );

  it(
    'WRITEs answered with EIO (nbdkit error filter) fail the batch; once they stop, the cycle completes',
    fullOnly,
    async (t) => {
      const file = exportFile();
      const trigger = join(root, `errors${servers++}`);
      const server = await startNbdkit(t, [
        '--filter=error',
        'file',
        file,
        'error-pwrite=EIO',
        'error-pwrite-rate=100%',
        `error-pwrite-file=${trigger}`,
      ]);
      const volume = create(server.url);
      t.after(() => volume.close());
      volume.writeRegion(3, labelBytes('r3', geometry.regionSize));
      volume.startCycle();
      const atSwap = primaryImage(volume);
      writeFileSync(trigger, '');
      assert.throws(
        () => runCycle(volume),
        (error: unknown) => error instanceof ReplicaLinkError && error.code === 'E_IO' && /EIO/.test(error.message),
      );
      assert.equal(volume.phase, 'replicating');
      rmSync(trigger);
      runCycle(volume);
      assert.deepEqual(image(file), atSwap);
    },
  );

  it('a FLUSH that always fails is retried and never completes the cycle', fullOnly, async (t) => {
    const file = exportFile();
    const socket = join(root, `flaky${servers++}.sock`);
    const good = await startNbdkit(t, ['file', file], socket);
    const volume = create(good.url);
    t.after(() => volume.close());
    await good.stop();
    // nbdkit 1.32's error filter cannot fail a FLUSH: the eval plugin over the same file can.
    await startNbdkit(
      t,
      [
        'eval',
        `get_size=echo ${exportSize}`,
        `pread=dd if=${file} skip=$4 count=$3 iflag=skip_bytes,count_bytes status=none`,
        `pwrite=dd of=${file} seek=$4 conv=notrunc oflag=seek_bytes status=none`,
        'can_flush=exit 0',
        'flush=echo "EIO the test fails every flush" >&2; exit 1',
      ],
      socket,
    );
    volume.writeRegion(7, labelBytes('r7', geometry.regionSize));
    volume.startCycle();
    assert.throws(
      () => runCycle(volume),
      (error: unknown) => error instanceof ReplicaLinkError && /FLUSH|flush/.test(error.message),
    );
    assert.equal(volume.phase, 'replicating');
    const decoded = decodeControlBlock(new Uint8Array(readFileSync(file)).subarray(controlOffsetOf(geometry)));
    assert.ok(decoded.kind === 'block' && !(decoded.block.cycle === 1 && decoded.block.state === 'complete'));
  });

  it('an export replaced by an older copy is E_CORRUPT (it lost a completed cycle)', fullOnly, async (t) => {
    const file = exportFile();
    const socket = join(root, `stale${servers++}.sock`);
    const first = await startNbdkit(t, ['file', file], socket);
    const dir = freshDir();
    const volume = ReplicatedVolume.create(new NodeStorage(), dir, geometry, {
      secondaryUrl: first.url,
      link: testLink,
    });
    volume.writeRegion(2, labelBytes('cycle 1', geometry.regionSize));
    runCycle(volume);
    const older = `${file}.cycle1`;
    copyFileSync(file, older);
    volume.writeRegion(2, labelBytes('cycle 2', geometry.regionSize));
    runCycle(volume);
    volume.close();
    await first.stop();
    copyFileSync(older, file);
    await startNbdkit(t, ['file', file], socket);
    const reopened = ReplicatedVolume.open(new NodeStorage(), dir, { link: testLink });
    t.after(() => reopened.close());
    assert.throws(
      () => reopened.readRegion(2, 'secondary'),
      (error: unknown) =>
        error instanceof ReplicaLinkError && error.code === 'E_CORRUPT' && /lost completed cycles/.test(error.message),
    );
  });

  it(
    'cowmap init and cycle with an NBD secondary (bin/cowmap.js: the worker registers tsx itself)',
    fullOnly,
    async (t) => {
      const file = exportFile();
      const socket = join(root, `cli${servers++}.sock`);
      const server = await startNbdkit(t, ['file', file], socket);
      const dir = freshDir();
      const { regions, regionSize } = geometry;
      const init = await run(process.execPath, [
        cowmapScript,
        'init',
        dir,
        '--regions',
        `${regions}`,
        '--region-size',
        `${regionSize}`,
        '--secondary',
        server.url,
      ]);
      assert.match(init.stdout, new RegExp(`an export of ${exportSize} bytes`));
      const volume = ReplicatedVolume.open(new NodeStorage(), dir);
      volume.writeRegion(11, labelBytes('r11', regionSize));
      volume.close();
      const cycle = await run(process.execPath, [cowmapScript, 'cycle', dir]);
      assert.match(cycle.stdout, /^ran cycle 1: sent 1 region/);
      assert.deepEqual(image(file).subarray(11 * regionSize, 12 * regionSize), labelBytes('r11', regionSize));
      await server.stop();
      const failed = await run(process.execPath, [cowmapScript, 'cycle', dir, '--retry-seconds', '0'], {
        allowFail: true,
      });
      assert.equal(failed.status, 1);
      assert.match(failed.stderr, /^E_IO: .*the secondary .* failed/);
    },
  );
});
