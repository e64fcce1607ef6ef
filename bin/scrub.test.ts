// cowmap scrub as a user runs it: exit 0 on a clean volume; after a flipped byte,
// exit 1 and a line naming the file and the region; --repair then a cycle gives a
// secondary equal to the primary; --json; a volume that open refuses; usage.
// The cases run main() in this process (bin/runInProcess.ts): they are about
// what scrub finds and prints, not the process boundary, and a process start
// costs seconds on a loaded machine. The last case runs the binary itself, for
// the exit statuses and standard error as a shell sees them.

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeTemporaryDir, NodeStorage, removeTree } from '../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { runCycle } from '../impl/runCycle.ts';
import { flipByte } from '../impl/testFiles.ts';
import { runInProcess } from './runInProcess.ts';

const bin = fileURLToPath(new URL('./cowmap.js', import.meta.url));
const storage = new NodeStorage();
const regionSize = 512;
const regions = 40;
let root: string;

before(() => {
  root = makeTemporaryDir('cowmap-scrub-cli-');
});
after(() => removeTree(root));

async function scrub(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const run = await runInProcess(['scrub', ...args]);
  return { status: run.status, stdout: run.stdout.toString('utf8'), stderr: run.stderr };
}

/** `cowmap scrub ARGS` as a process of its own, writing no coverage file (impl/scrub.ts is covered in process). */
function scrubProcess(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_V8_COVERAGE;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'scrub', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function content(seed: number): Uint8Array {
  return Uint8Array.from({ length: regionSize }, (_, i) => (seed * 17 + i) & 0xff);
}

let volumeCount = 0;
/** A volume with regions 1, 2 and 30 replicated and region 5 written since. */
function makeVolume(): string {
  const dir = join(root, `vol${volumeCount++}`);
  const volume = ReplicatedVolume.create(storage, dir, { regions, regionSize });
  try {
    for (const region of [1, 2, 30]) volume.writeRegion(region, content(region));
    runCycle(volume);
    volume.writeRegion(5, content(5));
  } finally {
    volume.close();
  }
  return dir;
}

describe('cowmap scrub', async () => {
  it('a clean volume: exit 0, no finding', async () => {
    const dir = makeVolume();
    const run = await scrub([dir]);
    assert.equal(run.status, 0, run.stderr);
    assert.doesNotMatch(run.stdout, /E_CORRUPT/);
    assert.match(
      run.stdout,
      new RegExp(`^scrub ${dir}: clean: 0 finding\\(s\\), ${regions} region\\(s\\) of P and S checked$`, 'm'),
    );
  });

  it('a flipped byte in the secondary: exit 1 naming the file, offset and region; --repair and a cycle make S equal P', async () => {
    const dir = makeVolume();
    const image = join(dir, 'secondary', 'image');
    flipByte(image, 30 * regionSize + 9, 0x01);
    const run = await scrub([dir]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(
      run.stdout,
      new RegExp(
        `^E_CORRUPT: ${image} offset ${30 * regionSize} region 30: region 30 of the secondary does not match its digest`,
        'm',
      ),
    );
    assert.match(run.stdout, /: 1 left: 1 finding\(s\)/);

    const repair = await scrub([dir, '--repair']);
    assert.equal(repair.status, 0, repair.stdout + repair.stderr);
    assert.match(repair.stdout, /region 30: .*\(repaired: marked for the next cycle\)$/m);
    assert.match(repair.stdout, /1 region\(s\) marked in the next map/);

    const volume = ReplicatedVolume.open(storage, dir);
    try {
      assert.ok(volume.nextRegions().includes(30));
      runCycle(volume);
      const state = volume.state();
      assert.deepEqual(state.secondary, state.primary);
    } finally {
      volume.close();
    }
    assert.equal((await scrub([dir])).status, 0);
  });

  it('--json: one object with the findings', async () => {
    const dir = makeVolume();
    flipByte(join(dir, 'primary'), 2 * regionSize, 0x01); // region 2 is covered by nothing: P and S must agree
    const run = await scrub([dir, '--json']);
    assert.equal(run.status, 1, run.stderr);
    const report = JSON.parse(run.stdout) as {
      opened: boolean;
      findings: { file: string; region: number; offset: number }[];
      regionsChecked: number;
    };
    assert.equal(report.opened, true);
    assert.deepEqual(
      report.findings.map(({ file, region, offset }) => ({ file, region, offset })),
      [{ file: join(dir, 'primary'), region: 2, offset: 2 * regionSize }],
    );
    assert.equal(report.regionsChecked, regions);
  });

  it('a volume that open refuses with E_CORRUPT: that one line, exit 1', async () => {
    const dir = makeVolume();
    flipByte(join(dir, 'secondary', 'replica'), 40, 0x01); // the header's CRC fails
    const run = await scrub([dir]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stdout, /^E_CORRUPT: open: the secondary in .* is not this volume's: bad checksum$/m);
    assert.match(run.stdout, /the volume does not open \(E_CORRUPT\)/);
    const json = JSON.parse((await scrub([dir, '--json'])).stdout) as { opened: boolean; error: { code: string } };
    assert.deepEqual([json.opened, json.error.code], [false, 'E_CORRUPT']);
  });

  it('a flipped byte in a metadata slot or a map page: exit 1 naming the file; --repair cannot repair the metadata (exit 1)', async () => {
    const dir = makeVolume();
    flipByte(join(dir, 'meta'), 100, 0x01); // slot 0, the older one
    flipByte(join(dir, 'map1'), 4090, 0x01); // a reserved byte of page 0: its CRC fails
    const run = await scrub([dir]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(
      run.stdout,
      new RegExp(`^E_CORRUPT: ${join(dir, 'meta')} offset 0 region -: metadata slot 0 fails its CRC-32`, 'm'),
    );
    assert.match(run.stdout, new RegExp(`^E_CORRUPT: ${join(dir, 'map1')} offset 0 region 0: `, 'm'));
    const repair = await scrub([dir, '--repair']);
    assert.equal(repair.status, 1, repair.stderr);
    assert.match(repair.stdout, /metadata slot 0 fails its CRC-32 \(never repaired\)$/m);
  });

  it('a COW slot of the running cycle that fails its digest after the primary moved on: open refuses, one line naming DIR/cow and the region', async () => {
    const dir = makeVolume();
    const volume = ReplicatedVolume.open(storage, dir);
    try {
      volume.startCycle();
      volume.writeRegion(5, content(55)); // W[5] := the old P[5], then P[5] := new
    } finally {
      volume.close();
    }
    const cow = join(dir, 'cow');
    const file = storage.open(cow, { create: false });
    const slotOffset = file.size() - regions * regionSize + 5 * regionSize;
    file.close();
    flipByte(cow, slotOffset + 1, 0x01);
    const run = await scrub([dir]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stdout, new RegExp(`^E_CORRUPT: ${cow} offset ${slotOffset} region 5: `, 'm'));
    assert.match(run.stdout, /the volume does not open \(E_CORRUPT\)/);
  });

  it('--secondary DIR2: scrubs a secondary that moved away from where the volume recorded it', async () => {
    const dir = makeVolume();
    const moved = join(root, `moved${volumeCount}`);
    storage.rename(join(dir, 'secondary'), moved);
    flipByte(join(moved, 'image'), 2 * regionSize, 0x01);
    const run = await scrub([dir, '--secondary', moved]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(
      run.stdout,
      new RegExp(`^E_CORRUPT: ${join(moved, 'image')} offset ${2 * regionSize} region 2: `, 'm'),
    );
    assert.equal((await scrub([dir])).status, 1); // the recorded place is empty: open refuses (E_CORRUPT), one line
  });

  it('--help exits 0; through the binary: a missing DIR is a usage error (exit 2), no volume E_NOT_FOUND (exit 1)', async () => {
    const [usage, missing] = await Promise.all([scrubProcess([]), scrubProcess([join(root, 'nothing')])]);
    const help = await scrub(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^usage: cowmap scrub DIR \[--repair\] \[--json\] \[--secondary DIR2\]$/m);
    for (const option of ['--repair', '--json', '--secondary DIR2']) assert.ok(help.stdout.includes(option), option);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /^cowmap scrub: expected one volume directory/);
    assert.match(usage.stderr, /\nsee 'cowmap scrub --help'\n$/);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^E_NOT_FOUND: /);
  });
});
