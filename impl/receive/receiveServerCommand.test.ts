// `cowmap receive` as users run it (a child in its own process group), with a real
// primary (a volume whose secondary is the receiver's URL) and, at the full level, a
// primary on the wire (docs/remote.md's sequence, by the NBD test client): a completed
// cycle is what `read --consistent` returns once receive stopped; a cycle left mid-way
// (the primary gone, or the receiver killed and restarted) leaves the previous one;
// DIR2's lock (E_LOCKED for a second receive and for a read while it runs); the status
// file; a geometry that disagrees; and, where installed, nbdinfo, nbdcopy and qemu-io
// read the export.

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runInProcess } from '../../bin/runInProcess.ts';
import { testLevel } from '../../harness/testLevel.ts';
import { missing, run } from '../nbd/nbdTestTools.ts';
import { runCowmap, type ServeChild, startServeChild } from '../nbd/serveChild.ts';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { runCycle } from '../runCycle.ts';
import { NbdTestClient } from '../nbd/testClient.ts';
import { type ControlState, encodeControlBlock, exportSizeOf } from '../remote/controlBlock.ts';
import { readReceiveStatus, receiveStatusPath } from './receiveServerStatus.ts';
import { ReceiverStore } from './receiverStore.ts';

const geometry = { regions: 16, regionSize: 4096 };
const imageSize = geometry.regions * geometry.regionSize;
const volumeId = new Uint8Array(16).map((_, index) => index + 1);
const root = mkdtempSync(join(tmpdir(), 'cowmap-receive-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** A primary on the wire: the control block and region writes of docs/remote.md, and the image it expects. */
class WirePrimary {
  readonly image = new Uint8Array(imageSize);
  constructor(readonly client: NbdTestClient) {}

  control(cycle: number, state: ControlState): Promise<void> {
    const block = encodeControlBlock({ ...geometry, volumeId, state, cycle, swapTimeMs: 1_800_000_000_000, batch: 0 });
    return this.client.write(imageSize, block);
  }

  /** Init's claim: cycle 0 zeroes the image. */
  async claim(): Promise<void> {
    await this.control(0, 'sending');
    await this.client.writeZeroes(0, imageSize);
    await this.control(0, 'complete');
    await this.client.flush();
  }

  /** Cycle `cycle` writes `fill` into `regions`, flushed; completed unless `complete` is false. */
  async cycle(cycle: number, regions: readonly number[], fill: number, complete = true): Promise<Uint8Array> {
    const sent = [this.control(cycle, 'sending')];
    for (const region of regions) {
      const bytes = new Uint8Array(geometry.regionSize).fill(fill + region);
      sent.push(this.client.write(region * geometry.regionSize, bytes));
      this.image.set(bytes, region * geometry.regionSize);
    }
    await Promise.all(sent);
    await this.client.flush();
    if (complete) {
      await this.control(cycle, 'complete');
      await this.client.flush();
    }
    return this.image.slice();
  }
}

async function startReceiver(
  t: { after: (fn: () => Promise<void>) => void },
  dir: string,
  extra: string[] = [],
): Promise<{ receiver: ServeChild; socketPath: string }> {
  const socketPath = join(root, `s${dirs++}.sock`);
  const receiver = startServeChild([dir, '--socket', socketPath, ...extra], 'receive');
  t.after(() => receiver.stop());
  await receiver.waitFor(/^receiving into /);
  return { receiver, socketPath };
}

/** `cowmap read DIR2 --consistent` of the whole image, as users run it (a process: its output is bytes). */
function consistentImage(dir: string): Buffer {
  const read = runCowmap(['read', dir, '--consistent', '--offset', '0', '--length', String(imageSize)]);
  assert.equal(read.status, 0, read.stderr);
  return read.stdout;
}

/** The same through the store opened read-only, in this process (a process start costs a second or more). */
function storeConsistentImage(dir: string): Uint8Array {
  const store = ReceiverStore.open(new NodeStorage(), dir, { readOnly: true });
  try {
    return store.readConsistent(0, imageSize);
  } finally {
    store.close();
  }
}

const geometryArgs = ['--regions', String(geometry.regions), '--region-size', String(geometry.regionSize)];

// A process start costs seconds on a loaded machine: the tests of two receiver starts, or
// of what the real primary's test covers too, run at make verify's full level only. The
// receiver's crashes at every I/O call are the store's crash exploration's.
const fullOnly = testLevel === 'full' ? false : 'at the full level (make verify)';

test('a wire primary: pipelined cycles, the consistent image moves only at complete', { skip: fullOnly }, async (t) => {
  const dir = join(root, `r${dirs++}`);
  const { receiver, socketPath } = await startReceiver(t, dir, geometryArgs);
  const client = await NbdTestClient.connect({ socketPath });
  const primary = new WirePrimary(client);
  await primary.claim();
  const cycle1 = await primary.cycle(1, [0, 3, 15], 0x10);
  await primary.cycle(2, [3, 4], 0x40, false);
  client.destroy(); // the primary dies in the middle of cycle 2
  await receiver.waitFor(/receive: cycle 2 started/);
  assert.ok(
    receiver.lines.some((line) => /receive: cycle 1 completed: 12288 bytes/.test(line)),
    receiver.lines.join('\n'),
  );

  assert.equal(readReceiveStatus(dir)?.volumeId, Buffer.from(volumeId).toString('hex'));
  receiver.signalGroup('SIGTERM');
  assert.equal(await receiver.exited, 0, receiver.stderr());
  assert.deepEqual(storeConsistentImage(dir), cycle1);
  const region = await runInProcess(['read', dir, '--consistent', '--region', '99']);
  assert.equal(region.status, 1, region.stderr);
  assert.match(region.stderr, /E_RANGE/);
});

test('a receiver killed mid-cycle restarts with the previous image, and the cycle sent again completes', {
  skip: fullOnly,
}, async (t) => {
  const dir = join(root, `r${dirs++}`);
  const first = await startReceiver(t, dir, geometryArgs);
  let client = await NbdTestClient.connect({ socketPath: first.socketPath });
  let primary = new WirePrimary(client);
  await primary.claim();
  const cycle1 = await primary.cycle(1, [1, 2], 0x20);
  await primary.cycle(2, [2, 9], 0x60, false);
  first.receiver.signalGroup('SIGKILL');
  await first.receiver.exited;
  client.destroy();

  const otherGeometry = ['--regions', '8', '--region-size', '4096'];
  const mismatch = await runInProcess(['receive', dir, '--socket', join(root, 'x.sock'), ...otherGeometry]);
  assert.equal(mismatch.status, 2, mismatch.stderr);
  assert.deepEqual(storeConsistentImage(dir), cycle1, 'recovery keeps cycle 1 (read-only, in memory)');

  const again = await startReceiver(t, dir);
  client = await NbdTestClient.connect({ socketPath: again.socketPath });
  const image = primary.image;
  primary = new WirePrimary(client);
  primary.image.set(image);
  const cycle2 = await primary.cycle(2, [2, 9], 0x60);
  again.receiver.signalGroup('SIGTERM');
  assert.equal(await again.receiver.exited, 0, again.receiver.stderr());
  assert.deepEqual(storeConsistentImage(dir), cycle2);
});

/** nbdinfo shows the export's size; nbdcopy and qemu-io READ it: the latest bytes (`latest`, the image). */
async function checkWithTools(socketPath: string, latest: Uint8Array, region: number, fill: number): Promise<void> {
  if (missing('nbdinfo', 'nbdcopy', 'qemu-io') !== undefined) return; // missing() says so on stderr
  const url = `nbd+unix:///?socket=${socketPath}`;
  const size = await run('nbdinfo', ['--size', url]);
  assert.equal(Number(size.stdout.trim()), exportSizeOf(geometry));
  const copy = join(root, `copy${dirs++}`);
  await run('nbdcopy', [url, copy]);
  assert.deepEqual(readFileSync(copy).subarray(0, imageSize), Buffer.from(latest), 'READ returns the latest writes');
  const read = `read -P ${fill} ${region * geometry.regionSize} ${geometry.regionSize}`;
  const qemu = await run('qemu-io', ['-r', '-f', 'raw', '-c', read, url]);
  assert.doesNotMatch(qemu.stdout, /Pattern verification failed/, qemu.stdout);
}

// make test's end-to-end primaryKilled.test.ts runs a real primary against receive too.
test('a real primary (an NBD URL): its cycle is the consistent image, not the one left mid-way; the lock, the status file, the tools', {
  skip: fullOnly,
}, async (t) => {
  const dir = join(root, `r${dirs++}`);
  const { receiver, socketPath } = await startReceiver(t, dir, geometryArgs);
  const primaryDir = join(root, `p${dirs++}`);
  const secondaryUrl = `nbd+unix:///?socket=${socketPath}`;
  const volume = ReplicatedVolume.create(new NodeStorage(), primaryDir, geometry, { secondaryUrl });
  let atSwap: Uint8Array;
  let latest: Uint8Array;
  try {
    volume.writeMany([
      { offset: 0, bytes: new Uint8Array(4096).fill(0x31) },
      { offset: 7 * 4096 + 100, bytes: new Uint8Array(5000).fill(0x32) },
    ]);
    runCycle(volume);
    atSwap = volume.read(0, imageSize);
    volume.writeMany([
      { offset: 0, bytes: new Uint8Array(4096).fill(0x33) },
      { offset: 4096, bytes: new Uint8Array(4096).fill(0x34) },
    ]);
    volume.startCycle();
    volume.transferRegions([0]);
    latest = atSwap.slice();
    latest.set(volume.read(0, 4096), 0);
  } finally {
    volume.close(); // the primary goes away in the middle of its cycle 2
  }
  await receiver.waitFor(/receive: cycle 2 started/);
  await checkWithTools(socketPath, latest, 0, 0x33);

  const second = await runInProcess(['receive', dir, '--socket', join(root, 'other.sock')]);
  assert.equal(second.status, 1, second.stderr);
  assert.match(second.stderr, /E_LOCKED/);
  const locked = await runInProcess(['read', dir, '--consistent', '--region', '0']);
  assert.equal(locked.status, 1, locked.stderr);
  assert.match(locked.stderr, /E_LOCKED: .*stop receive first/);
  const status = readReceiveStatus(dir);
  assert.ok(status !== null, readFileSync(receiveStatusPath(dir), 'utf8'));
  assert.equal(status.completedCycle, 1);
  assert.equal(status.runningCycle, 2);
  assert.equal(status.regions, geometry.regions);

  receiver.signalGroup('SIGTERM');
  assert.equal(await receiver.exited, 0, receiver.stderr());
  assert.ok(!existsSync(receiveStatusPath(dir)), 'the status file goes at stop');
  assert.deepEqual(consistentImage(dir), Buffer.from(atSwap));
});

test('read --consistent of a volume whose secondary is consistent: (a byte range across regions) and of its DIR2', () => {
  const primaryDir = join(root, `p${dirs++}`);
  const secondaryDir = join(root, `c${dirs++}`);
  const volume = ReplicatedVolume.create(new NodeStorage(), primaryDir, geometry, {
    consistentSecondaryDir: secondaryDir,
  });
  let atSwap: Uint8Array;
  try {
    volume.writeMany([{ offset: 4096 - 10, bytes: new Uint8Array(5000).fill(0x51) }]);
    runCycle(volume);
    atSwap = volume.read(0, imageSize);
    volume.writeMany([{ offset: 0, bytes: new Uint8Array(8192).fill(0x52) }]);
  } finally {
    volume.close();
  }
  const read = runCowmap(['read', primaryDir, '--consistent', '--offset', '100', '--length', String(3 * 4096)]);
  assert.equal(read.status, 0, read.stderr);
  assert.deepEqual(read.stdout, Buffer.from(atSwap.subarray(100, 100 + 3 * 4096)));
  assert.deepEqual(storeConsistentImage(secondaryDir), atSwap);
});

test('receive usage errors (exit 2): no place to listen, a new DIR2 without a geometry, a geometry DIR2 disagrees with; a read of no store', async () => {
  const dir = join(root, `r${dirs++}`);
  const socket = ['--socket', join(root, `u${dirs++}.sock`)];
  const cases: [string[], RegExp][] = [
    [[dir, ...geometryArgs], /give --port P or --socket PATH/],
    [[dir, '--port', '1', ...socket], /not both/],
    [[dir, ...socket, '--regions', '4'], /together/],
    [[dir, ...socket], /holds no receiver yet/],
  ];
  ReceiverStore.create(new NodeStorage(), join(root, 'made'), exportSizeOf(geometry)).close();
  cases.push([[join(root, 'made'), ...socket, '--regions', '8', '--region-size', '4096'], /its export is 69632 bytes/]);
  for (const [args, message] of cases) {
    const result = await runInProcess(['receive', ...args]);
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
  assert.ok(!existsSync(dir), 'nothing is created on a usage error');
  // A directory that holds neither a volume nor a receiver: not found (exit 1), not corrupt.
  const read = await runInProcess(['read', root, '--consistent', '--offset', '0', '--length', '512']);
  assert.equal(read.status, 1, read.stderr);
  assert.match(read.stderr, /^E_NOT_FOUND: .* holds no volume and no receiver's store/);
});
