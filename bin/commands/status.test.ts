// cowmap status while another process holds the volume: the server's status file
// shown (lines and --json) when its pid lives, the E_LOCKED error when it is stale;
// and `cowmap serve` itself: its status while it serves, then a TERM stops it and
// releases the lock, so that status opens the volume again. A receiver's directory:
// its store's state, or a live receiver's status file.

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServeChild } from '../../impl/nbd/serveChild.ts';
import { type ServeStatus, serveStatusPath, writeServeStatus } from '../../impl/nbd/serveStatus.ts';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import { type ReceiveStatus, writeReceiveStatus } from '../../impl/receive/receiveServerStatus.ts';
import { ReceiverStore } from '../../impl/receive/receiverStore.ts';
import {
  type ControlState,
  controlOffsetOf,
  encodeControlBlock,
  exportSizeOf,
} from '../../impl/remote/controlBlock.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { runInProcess } from '../runInProcess.ts';

const cowmap = join(import.meta.dirname, '../cowmap.js');
const lockChild = join(import.meta.dirname, '../../impl/lockChild.ts');
const root = mkdtempSync(join(tmpdir(), 'cowmap-status-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** `cowmap status` in this process (bin/runInProcess.ts): a process start costs seconds on a loaded machine. */
async function status(dir: string, ...options: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await runInProcess(['status', dir, ...options]);
  return { code: result.status, stdout: result.stdout.toString('utf8'), stderr: result.stderr };
}

function createVolume(name: string): string {
  const dir = join(root, name);
  ReplicatedVolume.create(new NodeStorage(), dir, { regions: 4, regionSize: 4096 }).close();
  return dir;
}

/** A process that holds the volume's lock (impl/lockChild.ts), as a server would. */
async function holdLock(dir: string): Promise<ChildProcess> {
  const child = fork(lockChild, ['hold', dir], { execArgv: ['--import', 'tsx'], stdio: 'ignore' });
  const held = await new Promise<number>((resolve) => child.once('message', (m: { held: number }) => resolve(m.held)));
  assert.equal(held, 1);
  return child;
}

function statusOf(pid: number, overrides: Partial<ServeStatus> = {}): ServeStatus {
  return {
    pid,
    updatedAt: new Date().toISOString(),
    listening: '127.0.0.1:10809',
    connections: 3,
    bufferedBytes: 0,
    cycle: 5,
    phase: 'replicating',
    cycleRunning: true,
    regionsLeft: 2,
    nextRegions: 1,
    cyclesCompleted: 4,
    lastCompletedCycle: 4,
    lastCompletedSwapAt: new Date(Date.now() - 12_300).toISOString(),
    lastCycleSeconds: 0.5,
    failure: null,
    link: null,
    retry: {
      paused: false,
      failedAttempts: 0,
      lastError: null,
      lastErrorAtMs: null,
      downSinceMs: null,
      nextRetryAtMs: null,
      faultsTotal: 0,
      resends: 0,
      regionsResent: 0,
    },
    ...overrides,
  };
}

test('a live server: its status and the lag, in lines and in JSON; a stale file: E_LOCKED', async () => {
  const dir = createVolume('held');
  const holder = await holdLock(dir);
  try {
    assert.match((await status(dir)).stderr, /^E_LOCKED: /);
    writeServeStatus(dir, statusOf(holder.pid!));
    let result = await status(dir);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`held by cowmap serve \\(pid ${holder.pid}\\)`));
    assert.match(result.stdout, /listening +127\.0\.0\.1:10809, 3 connection\(s\)/);
    assert.match(result.stdout, /regions +1 next, 2 left to send/);
    assert.match(result.stdout, /cycles +4 completed since the server started \(last: cycle 4, 0\.5 s\)/);
    assert.match(result.stdout, /lag +secondary's point in time: 1\d\.\d s old/);
    writeServeStatus(dir, statusOf(holder.pid!, { lastCompletedSwapAt: null, failure: 'E_IO: boom' }));
    result = await status(dir, '--json');
    assert.equal(result.code, 0, result.stderr);
    const parsed = JSON.parse(result.stdout);
    assert.equal(parsed.server.pid, holder.pid);
    assert.equal(parsed.lagSeconds, null);
    assert.equal(parsed.server.failure, 'E_IO: boom');
    assert.match((await status(dir)).stdout, /lag +unknown: no cycle completed since the server started/);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeServeStatus(dir, statusOf(dead));
    result = await status(dir);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^E_LOCKED: /);
  } finally {
    holder.kill('SIGKILL');
  }
});

test('a live server with a remote secondary: the link, the far side, the paused cycle and its retries', async () => {
  const dir = createVolume('remote');
  const holder = await holdLock(dir);
  try {
    const now = Date.now();
    const link = {
      url: 'nbd://127.0.0.1:10810/',
      state: 'down' as const,
      lastError: 'E_IO: connect: ECONNREFUSED',
      lastErrorAtMs: now - 4_200,
      failedAttempts: 3,
      far: { completedCycle: 4, swapTimeMs: now - 61_000 },
    };
    const retry = {
      ...statusOf(0).retry,
      paused: true,
      failedAttempts: 3,
      lastError: link.lastError,
      lastErrorAtMs: link.lastErrorAtMs,
      downSinceMs: now - 9_000,
      nextRetryAtMs: now + 1_500,
      faultsTotal: 5,
      resends: 1,
      regionsResent: 2,
    };
    writeServeStatus(dir, statusOf(holder.pid!, { link, retry }));
    const result = await status(dir);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^secondary +nbd:\/\/127\.0\.0\.1:10810\/$/m);
    assert.match(
      result.stdout,
      /^link +down, 3 failed attempt\(s\) since the last success; last error 4\.\d s ago: E_IO: connect: ECONNREFUSED$/m,
    );
    assert.match(result.stdout, /^far side +cycle 4 completed; its point in time is 6\d\.\d s old$/m);
    assert.match(
      result.stdout,
      /^retries +cycle paused after 3 failed attempt\(s\), next attempt in 1\.\d s; 5 link fault\(s\), 1 resend\(s\) \(2 region\(s\)\)/m,
    );
    const parsed = JSON.parse((await status(dir, '--json')).stdout);
    assert.deepEqual(
      [parsed.link.url, parsed.link.state, parsed.link.failedAttempts, parsed.link.farCompletedCycle],
      [link.url, 'down', 3, 4],
    );
    assert.ok(parsed.link.farAgeSeconds >= 61 && parsed.link.farAgeSeconds < 120, String(parsed.link.farAgeSeconds));
    assert.ok(parsed.link.lastErrorAgeSeconds >= 4.2, String(parsed.link.lastErrorAgeSeconds));
    assert.equal(parsed.server.retry.paused, true);
    // A directory secondary: no link lines, link null in JSON.
    writeServeStatus(dir, statusOf(holder.pid!));
    assert.doesNotMatch((await status(dir)).stdout, /^(secondary|link|far side|retries) /m);
    assert.equal(JSON.parse((await status(dir, '--json')).stdout).link, null);
  } finally {
    holder.kill('SIGKILL');
  }
});

test('an unheld volume with a serve.status left behind: status opens it (--json: its maps), scrub finds nothing', async () => {
  const dir = createVolume('free');
  writeServeStatus(dir, statusOf(process.pid));
  const result = await status(dir, '--json');
  assert.equal(result.code, 0, result.stderr);
  const parsed = JSON.parse(result.stdout);
  assert.deepEqual([parsed.regions, parsed.phase, parsed.nextRegions], [4, 'idle', []]);
  // scrub reads the volume's own files by name: the extra file is no finding.
  const scrub = spawnSync(process.execPath, [cowmap, 'scrub', dir], { encoding: 'utf8' });
  assert.equal(scrub.status, 0, scrub.stdout + scrub.stderr);
});

test('cowmap serve: status shows it while it serves; a TERM stops it and releases the lock', async () => {
  const dir = createVolume('served');
  const socketPath = join(root, 'served.sock');
  const server = startServeChild([dir, '--socket', socketPath, '--cycle-every', '0.2']);
  try {
    await server.waitFor(/^serving /);
    // The server writes its status file at least every second.
    for (let tries = 0; tries < 100 && !existsSync(serveStatusPath(dir)); tries++) await sleep(100);
    const serving = await status(dir);
    assert.equal(serving.code, 0, `status while serving: ${serving.stderr}`);
    assert.match(serving.stdout, new RegExp(`pid ${server.pid}\\)`));
    // To the server's pid only, as a supervisor that knows the main pid sends it.
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0, server.stderr());
  } finally {
    await server.stop();
  }
  const result = await status(dir);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^volume /);
  assert.equal(existsSync(serveStatusPath(dir)), false, 'serve removes its status file when it stops');
});

test("a receiver's directory: its state from the store (lines and JSON); while a live receiver holds it, its status file", async () => {
  const dir = join(root, 'receiver');
  const geometry = { regions: 4, regionSize: 4096 };
  const controlOffset = controlOffsetOf(geometry);
  const volumeId = new Uint8Array(16).fill(0xab);
  const swapTimeMs = Date.now() - 42_000;
  const block = (cycle: number, state: ControlState) =>
    encodeControlBlock({ ...geometry, volumeId, cycle, state, swapTimeMs: cycle === 0 ? 0 : swapTimeMs, batch: 0 });
  const store = ReceiverStore.create(new NodeStorage(), dir, exportSizeOf(geometry));
  store.write(controlOffset, block(0, 'sending'));
  store.writeZeroes(0, 4 * 4096);
  store.write(controlOffset, block(0, 'complete'));
  store.write(controlOffset, block(1, 'sending'));
  store.write(0, new Uint8Array(4096).fill(1));
  store.write(controlOffset, block(1, 'complete'));
  store.write(controlOffset, block(2, 'sending'));
  store.write(4096, new Uint8Array(4096).fill(2));
  store.flush();
  const journalBytes = store.status().journalBytes;
  store.close();
  let result = await status(dir);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^receiver +.*receiver$/m);
  assert.match(result.stdout, /^export +20480 bytes: a volume of 4 regions x 4096 bytes, id (ab){16}$/m);
  assert.match(result.stdout, /^completed +cycle 1; its point in time \(the primary at \S+\) is 4\d\.\d s old$/m);
  assert.match(result.stdout, new RegExp(`^running +cycle 2, ${journalBytes} journal bytes$`, 'm'));
  const parsed = JSON.parse((await status(dir, '--json')).stdout);
  assert.deepEqual(
    [parsed.heldBy, parsed.completedCycle, parsed.runningCycle, parsed.journalBytes, parsed.regions, parsed.server],
    [null, 1, 2, journalBytes, 4, null],
  );
  assert.ok(parsed.ageSeconds >= 42 && parsed.ageSeconds < 100, String(parsed.ageSeconds));

  const holder = await holdLock(dir);
  try {
    assert.match((await status(dir)).stderr, /^E_LOCKED: /, 'locked, no status file');
    const written: ReceiveStatus = {
      pid: holder.pid!,
      updatedAt: new Date().toISOString(),
      listening: '/run/receive.sock',
      connections: 1,
      exportSize: exportSizeOf(geometry),
      volumeId: Buffer.from(volumeId).toString('hex'),
      regions: 4,
      regionSize: 4096,
      completedCycle: 5,
      completedSwapAt: new Date(Date.now() - 7_000).toISOString(),
      runningCycle: 6,
      journalBytes: 9000,
      cyclesCompleted: 4,
      lastCycleSeconds: 0.25,
      bytesReceived: 123456,
      failure: null,
    };
    writeReceiveStatus(dir, written);
    result = await status(dir);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`held by cowmap receive \\(pid ${holder.pid}\\)`));
    assert.match(result.stdout, /^listening +\/run\/receive\.sock, 1 connection\(s\)$/m);
    assert.match(result.stdout, /^completed +cycle 5; its point in time \(the primary at \S+\) is [78]\.\d s old$/m);
    assert.match(result.stdout, /^running +cycle 6, 9000 journal bytes$/m);
    assert.match(
      result.stdout,
      /^cycles +4 completed since the receiver started \(the last took 0\.250 s\); 123456 bytes received$/m,
    );
    const held = JSON.parse((await status(dir, '--json')).stdout);
    assert.deepEqual(
      [held.heldBy, held.completedCycle, held.runningCycle, held.server.pid],
      ['cowmap receive', 5, 6, holder.pid],
    );
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeReceiveStatus(dir, { ...written, pid: dead });
    result = await status(dir);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^E_LOCKED: /, 'a stale status file');
  } finally {
    holder.kill('SIGKILL');
  }
  result = await status(join(root, 'nothing-here'));
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^E_NOT_FOUND: open: no volume and no receiver's store in /);
});
