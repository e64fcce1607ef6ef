// Every `cowmap` command run the way a hostile tester runs it:
// on a read-only directory, on a full file system, with missing and wrong --file
// paths, huge lengths and offsets, extreme geometries, unknown options. Whatever
// happens, the command exits 0, 1 or 2, a failure says "CODE: message" or
// "cowmap CMD: problem" on its first line of stderr, and no stack trace or
// "Error:" appears. As root the read-only directory is a read-only bind mount and
// the full file system a 1 MiB tmpfs (chmod does not stop root); without root the
// first is made with chmod and the second is skipped, said on stdout. Every mount
// is undone in an after hook, whatever failed.
//
// Speed (make test stays under 5 minutes on 2 cores): every case that is not
// about the process boundary calls main() from bin/main.ts in this process with
// its output captured (bin/runInProcess.ts), one at a time: --help, --version,
// usage errors, geometries init refuses, the DIR commands on what is no volume,
// read-only and full file systems and a held volume where they write text. A
// process of its own stays for serve (it runs until stopped), for read's bytes
// on stdout, for input on stdin, for a few of each kind of the command line
// itself, and for the start-up guard and the environment cases. Those processes
// run concurrently, at most `poolSize` at a time, without NODE_V8_COVERAGE:
// every line they reach is covered in process by the other tests, and writing a
// coverage file at each exit cost a third of their time.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NodeStorage } from '../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { runInProcess } from './runInProcess.ts';

const bin = fileURLToPath(new URL('./cowmap.js', import.meta.url));
const scrubExists = existsSync(fileURLToPath(new URL('./commands/scrub.ts', import.meta.url)));
const isRoot = process.getuid?.() === 0;

/** What serve prints once it listens. */
const servingLine = /^serving /m;

/** The commands that take a volume directory, with arguments that would succeed on a healthy volume. */
const dirCommands: {
  name: string;
  args: (dir: string) => string[];
  input?: string;
  writes: boolean;
  /** It runs until stopped when it opens the volume: stop it (SIGTERM) once its stdout says this. */
  stopWhen?: RegExp;
}[] = [
  { name: 'status', args: (dir) => ['status', dir], writes: false },
  { name: 'read', args: (dir) => ['read', dir, '--region', '0'], writes: false },
  { name: 'read', args: (dir) => ['read', dir, '--offset', '1', '--length', '700', '--secondary'], writes: false },
  { name: 'write', args: (dir) => ['write', dir, '--region', '1', '--label', 'B2'], writes: true },
  { name: 'write', args: (dir) => ['write', dir, '--offset', '100'], input: 'hello', writes: true },
  { name: 'cycle', args: (dir) => ['cycle', dir], writes: true },
  // serve runs until stopped: on a volume it can open, a SIGTERM once it serves stops it (exit 0).
  {
    name: 'serve',
    args: (dir) => ['serve', dir, '--socket', join(scratch, `nbd-${Math.random().toString(36).slice(2)}.sock`)],
    writes: true,
    stopWhen: servingLine,
  },
  ...(scrubExists ? [{ name: 'scrub', args: (dir: string) => ['scrub', dir], writes: false }] : []),
];

let scratch = '';
const mounts: string[] = [];
const chmodded: string[] = [];

interface Run {
  args: string[];
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** At most this many cowmap processes at once (most of their time is start-up, waiting on the loader). */
const poolSize = 4;
let running = 0;
const waiting: (() => void)[] = [];

async function pooled<T>(task: () => Promise<T>): Promise<T> {
  if (running >= poolSize) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await task();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** The environment of a spawned cowmap: no COWMAP_DEBUG, and no coverage file written at its exit (see the head). */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, COWMAP_DEBUG: '' };
  delete env.NODE_V8_COVERAGE;
  return env;
}

/** Runs `command` to its end, in the pool, feeding it `input`; killed after 120 s. */
function spawnRun(
  label: string[],
  command: string[],
  options: { input?: string | Uint8Array; cwd?: string; stopWhen?: RegExp } = {},
): Promise<Run> {
  return pooled(
    () =>
      new Promise<Run>((resolve, reject) => {
        const child = spawn(command[0]!, command.slice(1), {
          cwd: options.cwd ?? scratch,
          env: childEnv(),
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let stopSent = false;
        child.stdout.on('data', (data: Buffer) => {
          out.push(data);
          // Once: a second SIGTERM would kill it while it shuts down.
          if (!stopSent && options.stopWhen?.test(Buffer.concat(out).toString('utf8'))) {
            stopSent = true;
            child.kill('SIGTERM');
          }
        });
        child.stderr.on('data', (data: Buffer) => err.push(data));
        // A command that never reads its standard input closes it first: not a failure here.
        child.stdin.on('error', () => {});
        child.stdin.end(options.input ?? '');
        const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
        child.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        child.once('close', (status, signal) => {
          clearTimeout(timer);
          resolve({
            args: label,
            status,
            signal,
            stdout: Buffer.concat(out),
            stderr: Buffer.concat(err).toString('utf8'),
          });
        });
      }),
  );
}

/**
 * Runs cowmap as a process to its end. `stopWhen` sends it SIGTERM once its
 * stdout matches (serve, once it serves): not after a fixed time, which a loaded
 * machine can pass before the process has even started.
 */
function cowmap(args: string[], options: { input?: string | Uint8Array; stopWhen?: RegExp } = {}): Promise<Run> {
  return spawnRun(args, [process.execPath, bin, ...args], options);
}

/** The in-process runs, one after the other: each captures the process's stdout and stderr while it runs. */
let inProcessQueue: Promise<unknown> = Promise.resolve();

/** main(args) in this process (bin/runInProcess.ts), as a Run, after the in-process runs queued before it. */
function inProcess(args: string[]): Promise<Run> {
  const run = inProcessQueue.then(() => runInProcess(args)).then((done) => ({ ...done, signal: null }));
  inProcessQueue = run.catch(() => {});
  return run;
}

/**
 * A DIR command, in process where the process adds nothing: a process of its own
 * for serve (it runs until stopped when it opens the volume), and, unless
 * `failsAtOpen` (the volume cannot open: nothing is read from stdin or written as
 * bytes to stdout), for read (bytes on stdout) and for a command fed on stdin.
 */
function runDirCommand(command: (typeof dirCommands)[number], dir: string, failsAtOpen = false): Promise<Run> {
  const ownProcess =
    command.name === 'serve' || (!failsAtOpen && (command.name === 'read' || command.input !== undefined));
  if (!ownProcess) return inProcess(command.args(dir));
  return cowmap(command.args(dir), {
    input: command.input ?? '',
    ...(command.stopWhen === undefined ? {} : { stopWhen: command.stopWhen }),
  });
}

/** Every run of `runs` at once (in the pool), asserted coded in the order given. */
async function assertAllCoded(
  runs: { run: Promise<Run>; allowed: readonly number[]; firstLine?: RegExp }[],
): Promise<void> {
  const done = await Promise.all(runs.map((entry) => entry.run));
  done.forEach((run, index) => {
    assertCoded(run, runs[index]!.allowed, runs[index]!.firstLine);
  });
}

/** The promise of every command: an allowed status, a coded first line on failure, never a trace. */
function assertCoded(run: Run, allowed: readonly number[], firstLine?: RegExp): void {
  const stdout = run.stdout.toString('utf8').slice(0, 2000);
  const what = `cowmap ${run.args.join(' ')} (status ${run.status}, signal ${run.signal})\nstderr: ${run.stderr}\nstdout: ${stdout}`;
  assert.ok(run.status !== null && allowed.includes(run.status), `exit status not in ${allowed.join('/')}: ${what}`);
  assert.doesNotMatch(run.stderr, /^ {4}at /m, `a stack trace: ${what}`);
  assert.ok(!run.stderr.includes('Error:'), `"Error:" on stderr: ${what}`);
  if (run.status !== 0) {
    const line = run.stderr.split('\n', 1)[0]!;
    assert.match(line, /^(E_[A-Z_]+|cowmap [a-z]+): /, `first line of stderr: ${what}`);
    if (firstLine !== undefined) assert.match(line, firstLine, what);
  }
}

/** A fresh volume of 4 regions of 512 bytes with a write and a cycle behind it, and a pending write (built in process). */
async function makeVolume(dir: string): Promise<void> {
  assertCoded(await inProcess(['init', dir, '--regions', '4', '--region-size', '512']), [0]);
  assertCoded(await inProcess(['write', dir, '--region', '0', '--label', 'A1']), [0]);
  assertCoded(await inProcess(['cycle', dir]), [0]);
  assertCoded(await inProcess(['write', dir, '--region', '2', '--label', 'C1']), [0]);
}

/** The first `length` bytes of the volume in `dir`, read in process through the implementation (read-only). */
function volumeBytes(dir: string, length: number): Buffer {
  const volume = ReplicatedVolume.open(new NodeStorage(), dir, { readOnly: true });
  try {
    return Buffer.from(volume.read(0, length, 'primary'));
  } finally {
    volume.close();
  }
}

let volumes = 0;

/** A volume of its own for one run, as makeVolume builds it. */
async function ownVolume(name: string): Promise<string> {
  const dir = join(scratch, `own-${name}-${volumes++}`);
  await makeVolume(dir);
  return dir;
}

function tryRun(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

/** A read-only view of `dir` at a new path (a read-only bind mount), or null when this machine cannot make one. */
function readOnlyBindMount(dir: string): string | null {
  const target = mkdtempSync(join(scratch, 'ro-'));
  if (!tryRun('mount', ['--bind', dir, target])) return null;
  mounts.push(target);
  if (!tryRun('mount', ['-o', 'remount,bind,ro', target])) return null;
  return target;
}

function tmpfs(sizeBytes: number): string | null {
  const target = mkdtempSync(join(scratch, 'tmpfs-'));
  if (!tryRun('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', target])) return null;
  mounts.push(target);
  return target;
}

/** Fills the file system holding `dir` until it has no room left. */
function fill(dir: string): void {
  const chunk = Buffer.alloc(4096, 0x55);
  for (let index = 0; ; index++) {
    try {
      writeFileSync(join(dir, `filler-${index}`), chunk);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOSPC') return;
      throw error;
    }
  }
}

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'cowmap-misuse-'));
});

after(() => {
  // Mounts first (deepest last made, first undone), even when a test failed half way.
  for (const target of mounts.reverse()) {
    if (!tryRun('umount', [target])) tryRun('umount', ['-l', target]);
  }
  for (const path of chmodded) chmodSync(path, 0o755);
  rmSync(scratch, { recursive: true, force: true });
});

describe('cowmap misuse: the command line itself', () => {
  it('--help of every command exits 0, --version prints the version, a bare cowmap prints the help (exit 0)', async () => {
    for (const name of [
      'init',
      'status',
      'write',
      'read',
      'cycle',
      'serve',
      'replay',
      'explore',
      'fuzz',
      'crashes',
      'mutants',
      'adapter',
      'record',
      'conform',
      'verify',
      'diagram',
      ...(scrubExists ? ['scrub'] : []),
    ]) {
      const run = await inProcess([name, '--help']);
      assertCoded(run, [0]);
      assert.match(run.stdout.toString(), new RegExp(`usage: cowmap ${name}`), name);
    }
    const version = await inProcess(['--version']);
    assertCoded(version, [0]);
    assert.match(version.stdout.toString(), /^cowmap \d+\.\d+\.\d+/);
    assert.match((await inProcess(['--help'])).stdout.toString(), /COWMAP_DEBUG=1/);
    const bare = await inProcess([]);
    assertCoded(bare, [0]);
    assert.match(bare.stdout.toString(), /^usage: cowmap <command>/);
    assert.equal(
      (await inProcess(['help', 'init'])).stdout.toString(),
      (await inProcess(['init', '--help'])).stdout.toString(),
    );
  });

  it("the same through the binary itself: a command's --help, --version, a bare cowmap and a usage error", async () => {
    const [help, version, bare, usage] = await Promise.all([
      cowmap(['write', '--help']),
      cowmap(['--version']),
      cowmap([]),
      cowmap(['read', 'v', '--region']),
    ]);
    assertCoded(help, [0]);
    assert.match(help.stdout.toString(), /^usage: cowmap write /);
    assertCoded(version, [0]);
    assert.match(version.stdout.toString(), /^cowmap \d+\.\d+\.\d+/);
    assertCoded(bare, [0]);
    assert.match(bare.stdout.toString(), /^usage: cowmap <command>/);
    assertCoded(usage, [2], /^cowmap read: /);
    assert.match(usage.stderr.split('\n')[1] ?? '', /^usage: cowmap read\b/, usage.stderr);
    assert.equal(usage.stderr.split('\n')[2], "see 'cowmap read --help'", usage.stderr);
  });

  it('usage errors of every command exit 2 in one format: "cowmap CMD: problem", "usage: cowmap CMD ...", a pointer to --help', async () => {
    const cases: string[][] = [
      ['init', 'v', '--bogus'],
      ['init', 'v', '--regions', '4'],
      ['init', 'v', '--regions', '-1', '--region-size', '512'],
      ['init', 'v', '--regions', '1e3', '--region-size', '512'],
      ['init', 'v', '--regions', '99999999999999999999', '--region-size', '512'],
      ['init', '--regions', '4', '--region-size', '512'],
      ['status'],
      ['status', 'a', 'b'],
      ['status', ''],
      ['init', '', '--regions', '4', '--region-size', '512'],
      ['read', 'v'],
      ['read', 'v', '--region'],
      ['read', 'v', '--offset', '0', '--length', '-5'],
      ['write', 'v', '--region', '0'],
      ['cycle', 'v', '--now'],
      ['serve', 'v', '--port', 'x'],
      ['serve', 'v', '--port', '1', '--socket', 's'],
      ['explore', '--regions', 'x'],
      ['fuzz', '--seed', 'x'],
      ['verify', '--bogus'],
      ['diagram', '--bogus'],
      ['replay', '--bogus'],
      ['adapter', 'extra'],
      ['record', 'nothing'],
      ['conform', '--level', 'nope', '--', 'true'],
      ...(scrubExists ? [['scrub'], ['scrub', 'v', '--bogus']] : []),
    ];
    for (const args of cases) {
      const run = await inProcess(args);
      assertCoded(run, [2], new RegExp(`^cowmap ${args[0]}: `));
      const lines = run.stderr.split('\n');
      assert.match(lines[1] ?? '', new RegExp(`^usage: cowmap ${args[0]}\\b`), run.stderr);
      assert.deepEqual(lines.slice(2), [`see 'cowmap ${args[0]} --help'`, ''], run.stderr);
    }
    const unknown = await inProcess(['frobnicate']);
    assertCoded(unknown, [2], /^cowmap frobnicate: unknown command 'frobnicate'/);
    // An unknown option: exactly the one format, whatever the command.
    for (const name of ['init', 'verify', 'conform', 'scrub']) {
      const run = await inProcess([name, '--bogus']);
      const usage = (await import('./commandList.ts')).commandNamed(name)!.usage;
      assert.equal(
        run.stderr,
        `cowmap ${name}: unknown option '--bogus'\nusage: cowmap ${name} ${usage}\nsee 'cowmap ${name} --help'\n`,
      );
    }
  });
});

describe('cowmap misuse: volumes that are not there or not volumes', () => {
  it('every DIR command on a missing directory, a file, and an empty directory: exit 1, coded', async () => {
    const file = join(scratch, 'a-file');
    writeFileSync(file, 'not a volume');
    const empty = join(scratch, 'empty');
    mkdirSync(empty);
    const dirs = [join(scratch, 'missing'), join(scratch, 'missing', 'deeper'), file, empty];
    await assertAllCoded(
      dirs.flatMap((dir) => dirCommands.map((command) => ({ run: runDirCommand(command, dir, true), allowed: [1] }))),
    );
    assert.deepEqual(readdirSync(empty), [], 'nothing was created in the empty directory');
  });

  it('init under a file, with a secondary under a file, and paths too long for the kernel: exit 1, coded', async () => {
    const file = join(scratch, 'a-file-too');
    writeFileSync(file, 'x');
    const long = join(scratch, 'x'.repeat(5000));
    await assertAllCoded([
      { run: inProcess(['init', join(file, 'vol'), '--regions', '4', '--region-size', '512']), allowed: [1] },
      {
        run: inProcess([
          'init',
          join(scratch, 'next-to-a-file'),
          '--regions',
          '4',
          '--region-size',
          '512',
          '--secondary',
          join(file, 'secondary'),
        ]),
        allowed: [1],
      },
      { run: inProcess(['init', long, '--regions', '4', '--region-size', '512']), allowed: [1] },
      ...dirCommands.map((command) => ({ run: runDirCommand(command, long, true), allowed: [1] })),
    ]);
    assert.ok(!existsSync(join(scratch, 'next-to-a-file', 'meta')), 'a failed init leaves no volume behind');
  });
});

describe('cowmap misuse: --file, lengths and offsets', () => {
  let dir = '';
  before(async () => {
    dir = join(scratch, 'inputs');
    await makeVolume(dir);
  });

  it('write --file of a missing path is E_NOT_FOUND, of a directory E_BAD_REQUEST, both naming the path', async () => {
    // A volume of its own for each case, so that they run at once (a volume has one holder at a time).
    const locked = join(scratch, 'unreadable');
    if (!isRoot) {
      writeFileSync(locked, 'x');
      chmodSync(locked, 0o000);
    }
    const cases: [string, number, RegExp | undefined][] = [
      ['/nonexistent', 1, /^E_NOT_FOUND: .*\/nonexistent/],
      [join(scratch, 'missing', 'file'), 1, /^E_NOT_FOUND: /],
      [tmpdir(), 1, new RegExp(`^E_BAD_REQUEST: .*${tmpdir()}`)],
      ['/dev/null', 0, undefined],
      ...(isRoot ? [] : [[locked, 1, /^E_IO: open: EACCES: /] as [string, number, RegExp]]),
    ];
    const runs = [];
    for (const [index, [file, status, firstLine]] of cases.entries()) {
      const own = await ownVolume(`file-${index}`);
      runs.push({
        run: inProcess(['write', own, '--offset', '0', '--file', file]),
        allowed: [status],
        ...(firstLine === undefined ? {} : { firstLine }),
      });
    }
    await assertAllCoded(runs);
  });

  it('an input longer than the room to the end of the volume is E_RANGE and writes nothing', async () => {
    const before = volumeBytes(dir, 2048);
    const big = join(scratch, 'big-input');
    writeFileSync(big, Buffer.alloc(2000, 0x41));
    // One after the other: they share the volume, which has one holder at a time.
    assertCoded(await inProcess(['write', dir, '--offset', '100', '--file', big]), [1], /^E_RANGE: /);
    assertCoded(
      await cowmap(['write', dir, '--offset', '100'], { input: Buffer.alloc(2000, 0x42) }),
      [1],
      /^E_RANGE: .*nothing was written/,
    );
    assertCoded(await cowmap(['write', dir, '--offset', '5368709120'], { input: 'x' }), [1], /^E_RANGE: /);
    assert.deepEqual(volumeBytes(dir, 2048), before, 'the volume did not change');
  });

  it('huge lengths, offsets and regions are E_RANGE (or bad usage when not an exact integer), never a RangeError', async () => {
    const cases: [string[], number, RegExp | undefined][] = [
      [['read', '--offset', '0', '--length', '5368709120'], 1, /^E_RANGE: /],
      [['read', '--offset', '0', '--length', '9007199254740991'], 1, /^E_RANGE: /],
      [['read', '--offset', '9007199254740991', '--length', '1'], 1, /^E_RANGE: /],
      [['read', '--offset', '99999999999999999999', '--length', '1'], 2, undefined],
      [['read', '--region', '4294967296'], 1, /^E_RANGE: /],
      [['write', '--region', '4', '--label', 'x'], 1, /^E_RANGE: /],
      [['write', '--region', '0', '--label', 'x'.repeat(513)], 1, /^E_SIZE: /],
    ];
    const runs = [];
    for (const [index, [[name, ...options], status, firstLine]] of cases.entries()) {
      const own = await ownVolume(`huge-${index}`);
      runs.push({
        run: inProcess([name!, own, ...options]),
        allowed: [status],
        ...(firstLine === undefined ? {} : { firstLine }),
      });
    }
    await assertAllCoded(runs);
  });

  it('a byte range larger than one piece streams out whole and in order', async () => {
    const large = join(scratch, 'large');
    // 24 MiB: three pieces of read's 8 MiB, with a mark at each piece boundary (built in process).
    assertCoded(await inProcess(['init', large, '--regions', '48', '--region-size', String(512 * 1024)]), [0]);
    const mark = join(scratch, 'mark');
    writeFileSync(mark, 'MARK');
    for (const offset of [8 << 20, (16 << 20) - 3])
      assertCoded(await inProcess(['write', large, '--offset', String(offset), '--file', mark]), [0]);
    const run = await cowmap(['read', large, '--offset', '1', '--length', String((24 << 20) - 1)]);
    assertCoded(run, [0]);
    assert.equal(run.stdout.length, (24 << 20) - 1);
    assert.equal(run.stdout.subarray((8 << 20) - 1, (8 << 20) + 3).toString(), 'MARK');
    assert.equal(run.stdout.subarray((16 << 20) - 4, 16 << 20).toString(), 'MARK');
  });
});

describe('cowmap misuse: extreme geometries', () => {
  it('init refuses them with E_SIZE (or bad usage) before anything is created', async () => {
    const cases: [string, string, number][] = [
      ['0', '512', 1],
      [String(2 ** 24 + 1), '512', 1],
      ['4', '0', 1],
      ['4', '511', 1],
      ['4', '513', 1],
      ['4', String(2 ** 26 + 512), 1],
      [String(2 ** 24), String(2 ** 20), 1],
      [String(2 ** 24), String(2 ** 26), 1],
      ['4', String(2 ** 52), 1],
      ['4', String(2 ** 53), 2],
      [String(2 ** 60), '512', 2],
      ['4', '-512', 2],
    ];
    for (const [regions, regionSize, status] of cases) {
      const dir = join(scratch, `geometry-${regions}-${regionSize}`, 'vol');
      // In process: init refuses before it touches the file system (the binary's usage errors are asserted above).
      assertCoded(
        await inProcess(['init', dir, '--regions', regions, '--region-size', regionSize]),
        [status],
        status === 1 ? /^E_SIZE: / : undefined,
      );
      assert.ok(
        !existsSync(join(scratch, `geometry-${regions}-${regionSize}`)),
        `init --regions ${regions} --region-size ${regionSize} created nothing`,
      );
    }
  });
});

describe('cowmap misuse: a read-only directory', () => {
  let source = '';
  let view: string | null = null;
  before(async () => {
    source = join(scratch, 'ro-source');
    await makeVolume(source);
    if (isRoot) {
      view = readOnlyBindMount(source);
    } else {
      for (const path of [source, join(source, 'secondary')]) {
        for (const name of readdirSync(path)) if (!name.endsWith('secondary')) chmodSync(join(path, name), 0o444);
        chmodSync(path, 0o555);
        chmodded.push(path);
      }
      view = source;
    }
    if (view === null)
      console.log(
        '# skipped: the read-only cases need a read-only bind mount (mount --bind, then remount,ro), which failed here',
      );
  });

  it('status and read succeed without writing anything; write and cycle fail with a code', async (t) => {
    if (view === null) return t.skip('no read-only bind mount on this machine');
    const listing = readdirSync(source).sort();
    const status = await inProcess(['status', view]);
    assertCoded(status, [0]);
    assert.match(status.stdout.toString(), /next +0010 +1 dirty \(X\)/);
    const region = await cowmap(['read', view, '--region', '0', '--secondary']);
    assertCoded(region, [0]);
    assert.equal(region.stdout.subarray(0, 2).toString(), 'A1');
    assertCoded(await cowmap(['read', view, '--offset', '1024', '--length', '2']), [0]);
    assertCoded(await inProcess(['write', view, '--region', '1', '--label', 'B2']), [1]);
    assertCoded(await inProcess(['cycle', view]), [1]);
    assert.deepEqual(readdirSync(source).sort(), listing, 'no file left behind (no lock file, no temporary)');
  });

  it('every DIR command, and init inside it, ends with a code', async (t) => {
    if (view === null) return t.skip('no read-only bind mount on this machine');
    // One after the other on the volume; the two inits, which do not open it, at once with them.
    const inits = [
      inProcess(['init', join(view, 'inner'), '--regions', '4', '--region-size', '512']),
      inProcess([
        'init',
        join(scratch, 'rw-vol'),
        '--regions',
        '4',
        '--region-size',
        '512',
        '--secondary',
        join(view, 'elsewhere'),
      ]),
    ];
    for (const command of dirCommands) {
      assertCoded(await runDirCommand(command, view), command.writes ? [1] : [0, 1]);
    }
    for (const init of inits) assertCoded(await init, [1]);
    assert.ok(!existsSync(join(scratch, 'rw-vol', 'meta')), 'a failed init leaves no volume behind');
  });
});

describe('cowmap misuse: a full file system', () => {
  let root: string | null = null;
  before(() => {
    if (!isRoot) {
      console.log('# skipped: the full file system cases need root (a 1 MiB tmpfs)');
      return;
    }
    root = tmpfs(1 << 20);
    if (root === null) console.log('# skipped: mounting a 1 MiB tmpfs failed here');
  });

  it('every command on a full file system exits with a code and leaves no temporary file', async (t) => {
    if (root === null) return t.skip('no small tmpfs on this machine');
    const dir = join(root, 'vol');
    await makeVolume(dir);
    // serve runs until stopped (15 s): on a volume of its own, at once with the rest.
    const serveDir = join(root, 'vol-serve');
    await makeVolume(serveDir);
    fill(root);
    // One after the other on the volume; the two inits, which do not open it, and serve at once with them.
    const others = [
      ...dirCommands
        .filter((command) => command.name === 'serve')
        .map((command) => ({ run: runDirCommand(command, serveDir), allowed: [0, 1] })),
      { run: inProcess(['init', join(root, 'second'), '--regions', '4', '--region-size', '512']), allowed: [1] },
      {
        run: inProcess(['init', join(root, 'third', 'deep'), '--regions', '64', '--region-size', String(1 << 20)]),
        allowed: [1],
      },
    ];
    for (const command of dirCommands) {
      if (command.name === 'serve') continue;
      assertCoded(await runDirCommand(command, dir), command.writes ? [0, 1] : [0]);
    }
    assertCoded(await cowmap(['write', dir, '--offset', '0'], { input: Buffer.alloc(2048, 0x43) }), [0, 1]);
    await assertAllCoded(others);
    for (const path of [dir, join(dir, 'secondary'), serveDir, join(serveDir, 'secondary')]) {
      assert.deepEqual(
        readdirSync(path).filter((name) => name.includes('.tmp')),
        [],
        `no temporary file in ${path}`,
      );
    }
  });

  it('a volume larger than its file system fails with a code at init or at its first write', async (t) => {
    if (root === null) return t.skip('no small tmpfs on this machine');
    const small = tmpfs(1 << 20);
    if (small === null) return t.skip('no second tmpfs');
    const dir = join(small, 'vol');
    const init = await inProcess(['init', dir, '--regions', '16', '--region-size', String(1 << 20)]);
    assertCoded(init, [0, 1]);
    if (init.status === 0)
      assertCoded(
        await cowmap(['write', dir, '--offset', '0'], { input: Buffer.alloc(4 << 20, 0x44) }),
        [1],
        /^E_IO: /,
      );
  });
});

describe('cowmap misuse: a volume another process holds', () => {
  it('status, read, write, cycle and a second serve end with a code while serve holds the volume', async () => {
    const dir = join(scratch, 'held');
    await makeVolume(dir);
    const server = spawn(process.execPath, [bin, 'serve', dir, '--socket', join(scratch, 'held.sock')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: childEnv(),
    });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        server.stdout.on('data', (data: Buffer) => {
          out += data.toString();
          if (out.includes('serving ')) resolve();
        });
        server.once('exit', (status) => reject(new Error(`serve ended first (${status}): ${out}`)));
      });
      // serve holds the volume: every other command fails to take it (or reads it), so they all run at once.
      await assertAllCoded([
        ...dirCommands
          .filter((command) => command.name !== 'serve')
          .map((command) => ({ run: runDirCommand(command, dir), allowed: [0, 1] })),
        { run: inProcess(['write', dir, '--region', '3', '--label', 'D1']), allowed: [1], firstLine: /^E_LOCKED: / },
        {
          run: cowmap(['serve', dir, '--socket', join(scratch, 'held-2.sock')], { stopWhen: servingLine }),
          allowed: [1],
          firstLine: /^E_LOCKED: /,
        },
      ]);
    } finally {
      server.kill('SIGTERM');
      await new Promise((resolve) => (server.exitCode !== null ? resolve(null) : server.once('exit', resolve)));
    }
  });
});

describe('cowmap misuse: the environment', () => {
  it('a working directory that was removed, a closed standard input, a reader that goes away: coded', async () => {
    const gone = join(scratch, 'gone');
    mkdirSync(gone);
    const closedDir = join(scratch, 'environment');
    await makeVolume(closedDir);
    const pipedDir = join(scratch, 'environment-piped');
    await makeVolume(pipedDir);
    const [removed, closed, piped, replay] = await Promise.all([
      spawnRun(
        ['status v in a removed directory'],
        ['sh', '-c', `cd "${gone}" && rmdir "${gone}" && exec "${process.execPath}" "${bin}" status v`],
      ),
      spawnRun(
        ['write with stdin closed'],
        ['sh', '-c', `exec "${process.execPath}" "${bin}" write "${closedDir}" --offset 0 <&-`],
      ),
      spawnRun(
        ['read into head -c 1'],
        [
          'sh',
          '-c',
          `"${process.execPath}" "${bin}" read "${pipedDir}" --offset 0 --length 2048 | head -c 1 >/dev/null`,
        ],
      ),
      inProcess(['replay', '--model-only', scratch]),
    ]);
    assertCoded(removed, [1], /^E_IO: getcwd: /);
    assertCoded(closed, [0, 1]);
    assert.doesNotMatch(piped.stderr, /^ {4}at |Error:/m);
    assertCoded(replay, [2], /^E_BAD_REQUEST: replay: .* is a directory/);
  });
});

describe('cowmap misuse: an internal error', () => {
  it('is E_INTERNAL on one line and a line saying to report it, with the stack only under COWMAP_DEBUG=1', async () => {
    const { reportFailure } = await import('./failure.ts');
    const written: string[] = [];
    const original = process.stderr.write;
    process.stderr.write = ((text: string) => {
      written.push(text);
      return true;
    }) as typeof process.stderr.write;
    const saved = process.env.COWMAP_DEBUG;
    try {
      delete process.env.COWMAP_DEBUG;
      assert.equal(reportFailure(new TypeError('Cannot read properties of undefined'), 'status', 'status DIR'), 1);
      process.env.COWMAP_DEBUG = '1';
      assert.equal(reportFailure(new RangeError('Invalid typed array length'), 'read', 'read DIR'), 1);
      assert.equal(
        reportFailure(
          Object.assign(new Error("EROFS: read-only file system, open '/v/lock'"), {
            code: 'EROFS',
            syscall: 'open',
            path: '/v/lock',
          }),
          'status',
          'status DIR',
        ),
        1,
      );
    } finally {
      process.stderr.write = original;
      if (saved === undefined) delete process.env.COWMAP_DEBUG;
      else process.env.COWMAP_DEBUG = saved;
    }
    assert.match(
      written[0]!,
      /^E_INTERNAL: cowmap status: Cannot read properties of undefined \(TypeError\)\nthis is a bug in cowmap: please report it .*COWMAP_DEBUG=1/,
    );
    assert.doesNotMatch(written[0]!, /^ {4}at /m);
    assert.match(written[1]!, /^E_INTERNAL: cowmap read: Invalid typed array length \(RangeError\)\n.*\n {4}at /);
    assert.equal(written[2], 'E_IO: open: EROFS: /v/lock\n');
  });
});
