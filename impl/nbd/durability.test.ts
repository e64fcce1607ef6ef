// The NBD export's durability, end to end: `cowmap serve` (a child process, as
// users run it) killed with SIGKILL while a client writes and cycles run; then the
// volume opens, keeps every write acknowledged before a completed FLUSH, and a
// cycle brings the secondary to the primary. Then fio's own verification over the
// export (skipped, naming fio, when fio or its nbd engine is missing).

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { atLevel } from '../../harness/testLevel.ts';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { runCycle } from '../runCycle.ts';
import { AcknowledgedWrites, type SentWrite } from './acknowledgedWrites.ts';
import { startServeChild } from './serveChild.ts';
import { readServeStatus } from './serveStatus.ts';
import { NbdTestClient } from './testClient.ts';
import { seedFrom, type TestRandom, testRandom } from './testRandom.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-nbd-durability-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
function freshDir(): string {
  return join(root, `v${dirs++}`);
}

const regionSize = 65536;

function createVolumeDir(regions: number): string {
  const dir = freshDir();
  ReplicatedVolume.create(new NodeStorage(), dir, { regions, regionSize }).close();
  return dir;
}

interface Workload {
  readonly iodepth: number;
  readonly flushEvery: number;
  readonly lengthMin: number;
  readonly lengthMax: number;
}

const workload: Workload = { iodepth: 8, flushEvery: 16, lengthMin: 4096, lengthMax: 65536 };

function overlaps(write: SentWrite, offset: number, length: number): boolean {
  return write.offset < offset + length && offset < write.offset + write.bytes.length;
}

/**
 * Seeded random writes with `iodepth` in flight and a FLUSH every `flushEvery`
 * writes, recorded in `log`, until the connection closes. A write that overlaps
 * one in flight waits for it first (so the writes to a byte are ordered).
 */
async function writeUntilClosed(
  client: NbdTestClient,
  log: AcknowledgedWrites,
  random: TestRandom,
  onFlushed: () => void,
): Promise<void> {
  let closed = false;
  void client.closed.then(() => (closed = true));
  const inFlight = new Map<SentWrite, Promise<void>>();
  let sinceFlush = 0;
  while (!closed) {
    if (inFlight.size >= workload.iodepth) await Promise.race(inFlight.values());
    const length = random.integer(workload.lengthMin, workload.lengthMax);
    const offset = random.integer(0, client.sizeBytes - length);
    for (const [write, done] of inFlight) if (overlaps(write, offset, length)) await done;
    if (closed) break;
    const write = log.sent(offset, random.bytes(length));
    const done = client
      .write(offset, write.bytes)
      .then(() => log.acknowledge(write))
      .catch(() => {})
      .finally(() => inFlight.delete(write));
    inFlight.set(write, done);
    if (++sinceFlush < workload.flushEvery) continue;
    sinceFlush = 0;
    const covered = log.flushSent();
    client.flush().then(
      () => {
        log.flushed(covered);
        onFlushed();
      },
      () => {},
    );
  }
  await Promise.all(inFlight.values());
}

/** The volume in `dir` (after a crash) holds what `log` promises; then a cycle brings S to P. */
function checkAfterCrash(dir: string, log: AcknowledgedWrites, seed: number): void {
  const volume = ReplicatedVolume.open(new NodeStorage(), dir);
  try {
    const actual = volume.read(0, volume.sizeBytes);
    assert.deepEqual(log.check(actual, 'flushed'), [], `seed ${seed}: the volume lost flushed writes`);
    // A process kill keeps what the OS had: every answered WRITE's bytes (volume.writeMany's promise).
    assert.deepEqual(log.check(actual, 'acknowledged'), [], `seed ${seed}: the kill lost answered writes`);
    const run = runCycle(volume);
    // A resumed cycle sends P@swap; the writes after that swap need one more cycle.
    if (run.resumed) runCycle(volume);
    assert.equal(volume.phase, 'idle');
    const primary = Buffer.from(volume.read(0, volume.sizeBytes));
    assert.ok(primary.equals(volume.read(0, volume.sizeBytes, 'secondary')), `seed ${seed}: S differs from P`);
  } finally {
    volume.close();
  }
}

async function killDuringWrites(seed: number): Promise<string> {
  const random = testRandom(seed);
  const dir = createVolumeDir(64); // 4 MiB
  const socketPath = join(root, `kill-${seed}.sock`);
  const server = startServeChild([dir, '--socket', socketPath, '--cycle-every', '0.2']);
  const log = new AcknowledgedWrites();
  let cyclesSeen = 0;
  try {
    await server.waitFor(/^serving /);
    const client = await NbdTestClient.connect({ socketPath });
    let firstFlush: () => void = () => {};
    const flushed = new Promise<void>((resolve) => (firstFlush = resolve));
    const writing = writeUntilClosed(client, log, random, () => firstFlush());
    await flushed;
    await sleep(random.integer(100, 1500));
    server.signalGroup('SIGKILL');
    assert.equal(await server.exited, 'SIGKILL');
    await writing;
    cyclesSeen = server.lines.filter((line) => /^cycle \d+: (resumed and )?completed/.test(line)).length;
  } finally {
    await server.stop();
  }
  // The killed server's status file stays behind, stale (its pid is dead): open must not mind it.
  assert.notEqual(readServeStatus(dir), null, 'serve wrote no DIR/serve.status in its run');
  checkAfterCrash(dir, log, seed);
  const acknowledged = log.writes.filter((write) => write.acknowledged).length;
  return (
    `seed ${seed}: ${log.writes.length} writes sent, ${acknowledged} acknowledged, ${log.durableCount} covered by ` +
    `${log.flushesCompleted} completed flushes, ${cyclesSeen} cycle lines before the kill`
  );
}

test('the check of the writes: a lost flushed write is found, a later unflushed one may be there or not', () => {
  const log = new AcknowledgedWrites();
  const first = log.sent(0, new Uint8Array([1, 1, 1, 1]));
  log.acknowledge(first);
  log.flushed(log.flushSent());
  const second = log.sent(2, new Uint8Array([2, 2, 2, 2]));
  log.acknowledge(second);
  for (const actual of [
    [1, 1, 1, 1, 0, 0],
    [1, 1, 2, 2, 2, 2],
    [1, 1, 2, 1, 0, 2],
  ])
    assert.deepEqual(log.check(new Uint8Array(actual), 'flushed'), [], `${actual}`);
  assert.equal(log.check(new Uint8Array([1, 0, 1, 1, 0, 0]), 'flushed').length, 1);
  assert.equal(log.check(new Uint8Array([1, 1, 1, 1, 0, 0]), 'acknowledged').length, 4);
});

describe('cowmap serve killed with SIGKILL during writes', () => {
  // The timeouts turn a hang (a server that stops answering) into a failure instead of a stuck run.
  const options = { timeout: atLevel(180_000, 900_000) };
  test(
    'every write acknowledged before a completed FLUSH survives, open succeeds, a cycle brings S to P',
    options,
    async (t) => {
      const runs = atLevel(3, 12);
      const firstSeed = seedFrom('COWMAP_NBD_SEED');
      for (let run = 0; run < runs; run++) {
        const seed = (firstSeed + run) >>> 0;
        process.stderr.write(`# kill -9 during writes: seed ${seed} (COWMAP_NBD_SEED=${seed} repeats it)\n`);
        const note = await killDuringWrites(seed);
        t.diagnostic(note);
        process.stderr.write(`# ${note}\n`);
      }
    },
  );
});

// ------------------------------------------------------------------------- fio

/** Why the fio tests are skipped, or undefined when fio and its nbd engine are there. */
function fioMissing(): string | undefined {
  const engines = spawnSync('fio', ['--enghelp'], { encoding: 'utf8' });
  let reason: string | undefined;
  if (engines.error !== undefined || engines.status !== 0) reason = 'fio is not installed (apt-get install fio)';
  else if (!/^\s*nbd$/m.test(engines.stdout)) reason = 'fio has no nbd engine (fio built without libnbd)';
  if (reason !== undefined) process.stderr.write(`# skipped the fio durability tests: ${reason}\n`);
  return reason;
}

const fioSkip = fioMissing();

/** fio's output kept in memory at most: a fio whose server died may print an error per I/O. */
const fioOutputBytesMax = 4 << 20;

/**
 * Runs fio and resolves with its exit status and output. `deadlineMs` bounds the
 * run: past it fio's process group gets SIGTERM (fio stops its jobs and writes
 * their verify state), and SIGKILL 10 s later, so that a fio stuck on a dead server fails the test
 * instead of hanging it. The output keeps its first and last 2 MiB.
 */
function runFio(
  args: readonly string[],
  cwd: string,
  deadlineMs = 120_000,
): Promise<{ status: number; stdout: string; output: string; stopped: boolean }> {
  return new Promise((resolve, reject) => {
    // Its own process group: fio forks a process per job, which holds the pipes and
    // which a signal to fio alone does not always stop.
    const child = spawn('fio', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const signalGroup = (signal: NodeJS.Signals): void => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // The group is gone already.
      }
    };
    const keep = (text: string): string =>
      text.length <= fioOutputBytesMax
        ? text
        : text.slice(0, fioOutputBytesMax / 2) + text.slice(-fioOutputBytesMax / 2);
    let stdout = '';
    let output = '';
    let stopped = false;
    child.stdout.on('data', (chunk) => {
      stdout = keep(stdout + chunk);
      output = keep(output + chunk);
    });
    child.stderr.on('data', (chunk) => (output = keep(output + chunk)));
    const term = setTimeout(() => {
      stopped = true;
      signalGroup('SIGTERM');
    }, deadlineMs);
    const kill = setTimeout(() => signalGroup('SIGKILL'), deadlineMs + 10_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(term);
      clearTimeout(kill);
      resolve({ status: status ?? -1, stdout, output, stopped });
    });
  });
}

function fioJobArgs(socketPath: string, name: string, blockSize: string, sizeBytes: number): string[] {
  return [
    `--name=${name}`,
    '--ioengine=nbd',
    `--uri=nbd+unix:///?socket=${socketPath}`,
    '--rw=randwrite',
    `--bs=${blockSize}`,
    '--iodepth=8',
    `--size=${sizeBytes}`,
    '--verify=crc32c',
    '--randrepeat=1',
    // Jobs as threads of the one fio process: a forked job process calls setsid(), and
    // after the server's death one of them spun and held the pipes until killed alone.
    '--thread',
  ];
}

const fioBlockBytes = 4096;
/** The bytes fio completed in `direction`, from its JSON report (`--output-format=json`; the nbd engine prints a line first). */
function fioIoBytes(run: { stdout: string; output: string }, direction: 'read' | 'write'): number {
  const start = run.stdout.search(/^\{/m);
  assert.ok(start >= 0, `no JSON report from fio:\n${run.output}`);
  const report = JSON.parse(run.stdout.slice(start)) as { jobs: Record<string, { io_bytes: number }>[] };
  return report.jobs[0]![direction]!.io_bytes;
}

/**
 * fio's verify state counts the writes it issued, and its last `iodepth` by their
 * completions, but a write that failed when the connection died also completes:
 * the verify pass then reads blocks that were never written. So the verdict is:
 * every bad block is one never written (magic 0, as the volume was created) and
 * their count is at most the blocks verified beyond those fio wrote successfully.
 * (fio cannot say "acknowledged before a completed flush": the test of our own
 * client above checks that.)
 */
function judgeFioVerify(run: { stdout: string; output: string }, writtenBytes: number): string {
  const output = run.output;
  const verifiedBytes = fioIoBytes(run, 'read');
  const bad = new Set<string>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('verify:') && !/verify failed/.test(line)) continue;
    assert.match(line, /bad magic header 0,/, `fio found a block with other content than never written:\n${output}`);
    bad.add(/offset (\d+)/.exec(line)?.[1] ?? line);
  }
  const overCounted = Math.max(0, (verifiedBytes - writtenBytes) / fioBlockBytes);
  assert.ok(
    bad.size <= overCounted,
    `${bad.size} bad blocks, ${overCounted} beyond fio's completed writes:\n${output}`,
  );
  assert.ok(verifiedBytes > 0, `fio verified nothing:\n${output}`);
  return (
    `fio --verify_only after the restart: ${verifiedBytes} bytes verified, ${writtenBytes} written before the kill, ` +
    `${bad.size} never-written block(s) among the ${overCounted} fio counted without their write completing`
  );
}

describe('fio over the export', { skip: fioSkip, timeout: 300_000 }, () => {
  test('randwrite 4k and 64k, iodepth 8, --verify=crc32c, while a cycle runs every 0.2 s', async (t) => {
    const dir = createVolumeDir(256); // 16 MiB
    const socketPath = join(root, 'fio-verify.sock');
    const server = startServeChild([dir, '--socket', socketPath, '--cycle-every', '0.2']);
    const work = join(root, 'fio-verify');
    mkdirSync(work);
    try {
      await server.waitFor(/^serving /);
      for (const blockSize of ['4k', '64k']) {
        const result = await runFio(fioJobArgs(socketPath, `verify-${blockSize}`, blockSize, 256 * regionSize), work);
        assert.equal(result.status, 0, `fio ${blockSize}:\n${result.output}`);
        assert.doesNotMatch(result.output, /verify: bad|crc32c: verify failed/);
      }
      const cycles = server.lines.filter((line) => /cycle/.test(line)).length;
      t.diagnostic(`fio's verify passed for 4k and 64k; ${cycles} cycle lines from serve`);
    } finally {
      await server.stop();
    }
  });

  test('fio --fsync=1 with verify_state_save, serve killed mid-job by its trigger, restarted: --verify_only passes', async (t) => {
    const dir = createVolumeDir(256);
    const socketPath = join(root, 'fio-kill.sock');
    const work = join(root, 'fio-kill');
    mkdirSync(work);
    const triggerFile = join(work, 'trigger');
    const job = [
      ...fioJobArgs(socketPath, 'killed', `${fioBlockBytes}`, 256 * regionSize),
      '--fsync=1',
      '--output-format=json',
      // At most 1000 writes a second: the 4096 writes take 4 s or more, so the kill at 2 s lands mid-job.
      '--rate_iops=1000',
    ];
    const first = startServeChild([dir, '--socket', socketPath, '--cycle-every', '0.2']);
    let written: number;
    try {
      await first.waitFor(/^serving /);
      // fio's power-cut test: when the trigger file appears, fio stops its job, saves
      // the verify state of what was acknowledged, then runs the trigger: a SIGKILL of
      // the server's process group. (A SIGKILL from outside while fio's nbd engine has
      // requests in flight makes fio 3.33 spin on the dead connection, often.)
      const fio = runFio(
        [
          ...job,
          '--do_verify=0',
          '--verify_state_save=1',
          `--trigger-file=${triggerFile}`,
          `--trigger=kill -9 -${first.pid}`,
        ],
        work,
      );
      await sleep(2000);
      writeFileSync(triggerFile, '');
      const result = await fio;
      // fio exits 0 when it stopped before the kill, 1 when a request was still in
      // flight (the connection reset): either way its report and verify state hold
      // what it saw acknowledged.
      assert.ok(!result.stopped, `fio did not end after the kill:\n${result.output.slice(-4000)}`);
      assert.equal(await first.exited, 'SIGKILL', 'the trigger killed the server');
      written = fioIoBytes(result, 'write');
      assert.ok(written > 0 && written < 256 * regionSize, `the kill landed mid-job: ${written} bytes written`);
    } finally {
      await first.stop();
    }
    const states = readdirSync(work).filter((name) => name.endsWith('verify.state'));
    assert.ok(states.length > 0, `fio saved no verify state in ${work}: ${readdirSync(work).join(', ')}`);
    // The killed server's socket file stays: the restarted serve takes it over (nobody listens on it).
    const second = startServeChild([dir, '--socket', socketPath, '--cycle-every', '0.2']);
    try {
      await second.waitFor(/^serving /);
      const verify = await runFio([...job, '--verify_only', '--verify_state_load=1', '--verify_fatal=0'], work);
      const note = judgeFioVerify(verify, written);
      t.diagnostic(note);
      process.stderr.write(`# ${note}\n`);
    } finally {
      await second.stop();
    }
  });
});
