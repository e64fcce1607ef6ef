// The NBD export end to end with real clients (qemu-io, mke2fs + nbdcopy, e2fsck,
// nbdkit, nbdfuse) where they are installed; a test whose tool is missing is
// skipped and says which.

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { atLevel } from '../../harness/testLevel.ts';
import { createVolume, missing, root, run } from './nbdTestTools.ts';
import { type CycleReport, NbdServer } from './server.ts';
import type { ReplicatedVolume } from '../replicatedVolume.ts';

/** A server whose every swap copies the primary to SNAPS/N.primary and every completion the secondary to SNAPS/N.secondary. */
function snapshottingServer(volume: ReplicatedVolume, snaps: string, reports: CycleReport[]): NbdServer {
  return new NbdServer(volume, {
    log: () => {},
    onSwap: (cycle) => copyFileSync(join(volume.dir, 'primary'), join(snaps, `${cycle}.primary`)),
    onCycle: (report) => {
      copyFileSync(join(volume.dir, 'secondary/image'), join(snaps, `${report.cycle}.secondary`));
      reports.push(report);
    },
  });
}

describe('NBD end to end', () => {
  test('a. qemu-io writes patterns at many offsets and sizes; the primary matches', {
    skip: missing('qemu-io'),
  }, async () => {
    const volume = createVolume(64, 65536); // 4 MiB
    const server = new NbdServer(volume, { log: () => {}, cycleEverySeconds: 0.05 });
    const port = (await server.listen({ port: 0 })) as number;
    const expected = Buffer.alloc(volume.sizeBytes);
    const writes: [number, number, number][] = [
      [0, 1048576, 0xab],
      [512, 512, 0x01],
      [3, 7, 0x02],
      [65535, 2, 0x03],
      [1048576 + 4096, 200000, 0x04],
      [2 * 1048576 - 1, 65537, 0x05],
      [4 * 1048576 - 4096, 4096, 0x06],
      [3000000, 131072, 0x07],
    ];
    const args = ['-f', 'raw'];
    for (const [offset, length, pattern] of writes) {
      args.push('-c', `write -P 0x${pattern.toString(16)} ${offset} ${length}`);
      expected.fill(pattern, offset, offset + length);
    }
    args.push('-c', 'flush');
    for (const [offset, length, pattern] of writes.slice(1))
      args.push('-c', `read -P 0x${pattern.toString(16)} ${offset} ${length}`);
    args.push(`nbd://127.0.0.1:${port}`);
    const result = await run('qemu-io', args);
    assert.doesNotMatch(result.stdout + result.stderr, /Pattern verification failed|error/i);
    await server.close();
    await server.whenIdle();
    assert.ok(readFileSync(join(volume.dir, 'primary')).equals(expected), 'the primary image is what qemu-io wrote');
    volume.close();
  });

  test('b. mke2fs -d, nbdcopy onto the export while cycles run; each secondary = primary@swap and passes e2fsck', {
    skip: missing('mke2fs', 'e2fsck', 'nbdcopy', 'nbdkit'),
  }, async (t) => {
    const work = join(root, 'b');
    mkdirSync(join(work, 'tree/sub/deeper'), { recursive: true });
    // make test copies an 8 MiB file system of 12 files; make verify (COWMAP_TEST_LEVEL=full) 32 MiB of 48.
    const files = atLevel(12, 48);
    for (let index = 0; index < files; index++) {
      const bytes = Buffer.alloc(1000 + index * 14000);
      for (let at = 0; at < bytes.length; at++) bytes[at] = (at * 31 + index) & 0xff;
      writeFileSync(
        join(work, index % 3 === 0 ? 'tree' : index % 3 === 1 ? 'tree/sub' : 'tree/sub/deeper', `file${index}.bin`),
        bytes,
      );
    }
    const size = atLevel(8, 32) * 1024 * 1024;
    const image = join(work, 'fs.img');
    await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', join(work, 'tree'), image, `${size >> 20}M`]);
    const volume = createVolume(size / 262144, 262144);
    const snaps = join(work, 'snaps');
    mkdirSync(snaps);
    const reports: CycleReport[] = [];
    const server = snapshottingServer(volume, snaps, reports);
    const port = (await server.listen({ port: 0 })) as number;
    // The copy streams from nbdcopy's standard input, fed in eight pieces with a
    // cycle run (and waited for) after each: swaps land in the middle of the copy
    // however fast the server is (a timed copy once spanned 10 cycles and, with
    // group commit, spans 3), while nbdcopy's writes race with each cycle.
    const copyOptions = ['--flush', '--connections=1', '--requests=1', '--request-size=32768'];
    const started = process.hrtime.bigint();
    const copier = spawn('nbdcopy', [...copyOptions, '-', `nbd://127.0.0.1:${port}`], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let copierErr = '';
    copier.stderr!.on('data', (chunk) => (copierErr += chunk));
    const copied = new Promise<number | null>((resolve) => copier.on('close', resolve));
    const imageBytes = readFileSync(image);
    const pieces = 8;
    for (let piece = 0; piece < pieces; piece++) {
      const part = imageBytes.subarray((piece * size) / pieces, ((piece + 1) * size) / pieces);
      await new Promise<void>((resolve, reject) =>
        copier.stdin!.write(part, (error) => (error ? reject(error) : resolve())),
      );
      if (piece < pieces - 1) {
        server.requestCycle();
        await server.whenIdle();
      }
    }
    copier.stdin!.end();
    assert.equal(await copied, 0, `nbdcopy: ${copierErr}`);
    const cowmapSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const during = reports.length;
    server.requestCycle();
    await server.whenIdle();
    server.requestCycle();
    await server.whenIdle();
    await server.close();
    assert.ok(readFileSync(join(volume.dir, 'primary')).equals(readFileSync(image)), 'the primary is the image');
    assert.ok(during >= pieces - 1, `a cycle after each piece but the last, during the copy (${during})`);
    let checked = 0;
    let clean = 0;
    for (const report of reports) {
      const secondary = readFileSync(join(snaps, `${report.cycle}.secondary`));
      assert.ok(
        secondary.equals(readFileSync(join(snaps, `${report.cycle}.primary`))),
        `cycle ${report.cycle}: S = P@swap`,
      );
    }
    // e2fsck on the last secondary (the whole file system) and on a few taken mid-copy
    // whose superblock is there already (a copy cut at any point is not a file system).
    const last = reports[reports.length - 1]!;
    assert.ok(readFileSync(join(snaps, `${last.cycle}.secondary`)).equals(readFileSync(image)));
    for (const report of reports) {
      const file = join(snaps, `${report.cycle}.secondary`);
      if (report !== last && report.cycle % 4 !== 0) continue;
      const result = await run('e2fsck', ['-fn', file], { allowFail: true });
      if (report === last) assert.equal(result.status, 0, result.stdout + result.stderr);
      checked++;
      if (result.status === 0) clean++;
    }
    // The same copy through nbdkit's file plugin, for the throughput ratio.
    const plain = join(work, 'plain.img');
    writeFileSync(plain, Buffer.alloc(0));
    spawnSync('truncate', ['-s', String(size), plain]);
    const nbdkitPort = 20000 + (process.pid % 20000);
    const kit = spawn('nbdkit', ['-f', '-i', '127.0.0.1', '-p', String(nbdkitPort), 'file', plain], {
      stdio: 'ignore',
    });
    try {
      for (let attempt = 0; attempt < 50; attempt++) {
        if ((await run('nbdinfo', ['--size', `nbd://127.0.0.1:${nbdkitPort}`], { allowFail: true })).status === 0)
          break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const kitStarted = process.hrtime.bigint();
      await run('nbdcopy', [image, `nbd://127.0.0.1:${nbdkitPort}`]);
      const kitSeconds = Number(process.hrtime.bigint() - kitStarted) / 1e9;
      // The same default nbdcopy through `cowmap serve` code, cycles every 0.2 s, no test hooks.
      const fresh = createVolume(size / 262144, 262144);
      const plainServer = new NbdServer(fresh, { log: () => {}, cycleEverySeconds: 0.2 });
      const freshPort = (await plainServer.listen({ port: 0 })) as number;
      const servedStarted = process.hrtime.bigint();
      await run('nbdcopy', [image, `nbd://127.0.0.1:${freshPort}`]);
      const servedSeconds = Number(process.hrtime.bigint() - servedStarted) / 1e9;
      await plainServer.close();
      await plainServer.whenIdle();
      fresh.close();
      const regionsPerCycle = reports.slice(0, during).map((report) => report.regions);
      const note =
        `b: ${during} cycles during the copy (${reports.length} in all), regions per cycle ${regionsPerCycle.join(',')}; ` +
        `streamed 32 KiB copy with a cycle after each of ${pieces} pieces ${cowmapSeconds.toFixed(2)} s; ` +
        `default nbdcopy of the ${size >> 20} MiB image: cowmap ${servedSeconds.toFixed(2)} s (${(size / 1048576 / servedSeconds).toFixed(1)} MiB/s), ` +
        `nbdkit file ${kitSeconds.toFixed(2)} s (${(size / 1048576 / kitSeconds).toFixed(1)} MiB/s), ` +
        `cowmap/nbdkit time ratio ${(servedSeconds / kitSeconds).toFixed(1)}x; e2fsck -fn clean on ${clean} ` +
        `of ${checked} secondaries (mid-copy ones are a block copy cut short, not a file system state)`;
      t.diagnostic(note);
      process.stderr.write(`# ${note}\n`);
    } finally {
      kit.kill();
    }
    volume.close();
  });

  // c. A file system through FUSE. Everything that touches the FUSE file runs in a child
  // process (nbdfuse, mke2fs, debugfs): the server runs in this process, and a synchronous
  // read or write of the FUSE file from here would block the event loop that has to answer
  // it (a deadlock that leaves the mount and this process stuck in the kernel).
  const fuseSkip =
    missing('nbdfuse', 'fusermount3', 'mke2fs', 'debugfs', 'e2fsck') ??
    (existsSync('/dev/fuse') ? undefined : 'FUSE does not work here: no /dev/fuse in this container');
  test('c. nbdfuse + mke2fs + debugfs writes and removes files between cycles; each secondary = primary@swap and passes e2fsck', {
    skip: fuseSkip,
    timeout: 60000,
  }, async (t) => {
    const work = join(root, 'c');
    const mount = join(work, 'mnt');
    const snaps = join(work, 'snaps');
    mkdirSync(mount, { recursive: true });
    mkdirSync(snaps);
    const sources: string[] = [];
    for (let index = 0; index < 4; index++) {
      const bytes = Buffer.alloc(3000 + index * 70000);
      for (let at = 0; at < bytes.length; at++) bytes[at] = (at * 7 + index * 13) & 0xff;
      sources.push(join(work, `src${index}`));
      writeFileSync(sources[index]!, bytes);
    }
    const volume = createVolume(256, 65536); // 16 MiB
    const reports: CycleReport[] = [];
    const server = snapshottingServer(volume, snaps, reports);
    const port = (await server.listen({ port: 0 })) as number;
    const disk = join(mount, 'disk');
    const fuse = spawn('nbdfuse', [disk, `nbd://127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let fuseErr = '';
    fuse.stderr!.on('data', (chunk) => (fuseErr += chunk));
    const fuseExited = new Promise<void>((resolve) => fuse.on('exit', () => resolve()));
    const mounted = (): boolean =>
      readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .some((line) => line.split(' ')[1] === mount);
    // One cycle, waited for: at this point every debugfs/mke2fs run has exited, so all of its
    // writes went through FUSE -> NBD and were acknowledged (the server acknowledges a write
    // once its bytes are in P, and the swap syncs P first), and the swap sees a consistent
    // file system. A swap in the middle of a debugfs run would snapshot a half-updated file
    // system, which e2fsck may rightly reject; that is why the cycles are triggered between
    // the debugfs runs.
    const cycle = async (): Promise<void> => {
      server.requestCycle();
      await server.whenIdle();
    };
    // Each step: debugfs -w on the FUSE file (under `timeout`, so a hang fails the test).
    const debugfs = async (commands: string[]): Promise<void> => {
      const file = join(work, 'cmds');
      writeFileSync(file, `${commands.join('\n')}\n`);
      const result = await run('timeout', ['20', 'debugfs', '-w', '-f', file, disk]);
      assert.doesNotMatch(result.stderr.replace(/^debugfs [^\n]*\n/, ''), /\S/, `debugfs: ${result.stderr}`);
    };
    const steps = 6;
    try {
      for (let attempt = 0; attempt < 200 && !mounted(); attempt++)
        await new Promise((resolve) => setTimeout(resolve, 25));
      assert.ok(mounted(), `nbdfuse mounted ${mount}: ${fuseErr}`);
      await run('timeout', ['20', 'mke2fs', '-q', '-F', '-t', 'ext4', disk]);
      await cycle();
      for (let step = 1; step <= steps; step++) {
        const commands = [
          `write ${sources[step % 4]} f${step}`,
          `mkdir d${step}`,
          `cd d${step}`,
          `write ${sources[(step + 1) % 4]} g`,
          `write ${sources[(step + 2) % 4]} h`,
          'cd /',
        ];
        if (step >= 3) commands.push(`rm f${step - 2}`, `rm d${step - 2}/h`);
        await debugfs(commands);
        await cycle();
      }
    } finally {
      // Unmount first (the server is still up to answer any last flush), under a timeout;
      // lazily if busy; and nbdfuse is killed if it does not exit by itself.
      if ((await run('timeout', ['10', 'fusermount3', '-u', mount], { allowFail: true })).status !== 0) {
        await run('timeout', ['10', 'fusermount3', '-u', '-z', mount], { allowFail: true });
      }
      const exited = await Promise.race([
        fuseExited.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
      ]);
      if (!exited) fuse.kill('SIGKILL');
      await server.close();
      await server.whenIdle();
      volume.close();
    }
    assert.ok(reports.length >= 5, `at least five cycles (${reports.length})`);
    assert.equal(reports.length, steps + 1);
    for (const report of reports) {
      const secondary = join(snaps, `${report.cycle}.secondary`);
      assert.ok(
        readFileSync(secondary).equals(readFileSync(join(snaps, `${report.cycle}.primary`))),
        `cycle ${report.cycle}: S = P@swap`,
      );
      // e2fsck -n on the scratch copy taken at completion, never on the volume's own file.
      const fsck = await run('e2fsck', ['-fn', secondary], { allowFail: true });
      assert.equal(fsck.status, 0, `cycle ${report.cycle}: e2fsck -fn\n${fsck.stdout}${fsck.stderr}`);
    }
    // The last secondary holds what debugfs left: f(steps-1), f(steps), d1..d(steps), and the
    // files' bytes are the sources'.
    const last = join(snaps, `${reports[reports.length - 1]!.cycle}.secondary`);
    const listing = (await run('debugfs', ['-R', 'ls -p /', last])).stdout;
    const names = new Set([...listing.matchAll(/^\/\d+\/\d+\/\d+\/\d+\/([^/]+)\//gm)].map((match) => match[1]));
    for (let step = 1; step <= steps; step++) {
      assert.equal(names.has(`f${step}`), step > steps - 2, `f${step} in ${[...names].join(' ')}`);
      assert.ok(names.has(`d${step}`), `d${step}`);
    }
    const dumped = join(work, 'dumped');
    await run('debugfs', ['-R', `dump /f${steps} ${dumped}`, last]);
    assert.ok(readFileSync(dumped).equals(readFileSync(sources[steps % 4]!)), `f${steps} reads back`);
    const note =
      `c: ${reports.length} cycles (regions per cycle ` +
      `${reports.map((report) => report.regions).join(',')}), each secondary = P@swap and e2fsck -fn clean`;
    t.diagnostic(note);
    process.stderr.write(`# ${note}\n`);
  });
});
