// Structured replies and the change maps as dirty bitmaps, end to end with libnbd's
// and QEMU's tools against an in-process server on port 0: qemu-io writes, then
// `nbdinfo --map=qemu:dirty-bitmap:cowmap-next` lists exactly the written regions;
// after a swap cowmap-current lists them and cowmap-next is clean; `nbdinfo --map`
// (base:allocation) and `qemu-img map` see all data, and qemu-img map with the
// x-dirty-bitmap option (QEMU's client reading a bitmap) sees the same dirty regions;
// qemu-io reads the data back; nbdcopy (structured replies by default) copies in and
// out byte for byte. Skipped, naming the tool, when one is not installed.

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Prng } from '../../harness/prng.ts';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { run as runTool } from './nbdTestTools.ts';
import { NbdServer } from './server.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-nbd-tools-'));
after(() => rmSync(root, { recursive: true, force: true }));
const regionSize = 65536;
const regions = 16;
const tools = ['nbdinfo', 'nbdcopy', 'qemu-io', 'qemu-img'];

function missingTools(): string | undefined {
  const absent = tools.filter(
    (tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0,
  );
  if (absent.length === 0) return undefined;
  const reason = `not installed: ${absent.join(', ')} (apt-get install libnbd-bin qemu-utils)`;
  process.stderr.write(`# skipped the NBD block status end-to-end test: ${reason}\n`);
  return reason;
}

/** A tool's stdout, run without blocking the event loop (the in-process server must keep serving). */
async function run(cmd: string, args: string[]): Promise<string> {
  return (await runTool(cmd, args)).stdout;
}

/** `nbdinfo --map` lines: offset, length, flags, description. */
async function map(uri: string, context?: string): Promise<[number, number, number, string][]> {
  const output = await run('nbdinfo', [context === undefined ? '--map' : `--map=${context}`, uri]);
  return output
    .trim()
    .split('\n')
    .map((line) => {
      const [offset, length, flags, ...description] = line.trim().split(/\s+/);
      return [Number(offset), Number(length), Number(flags), description.join(' ')];
    });
}

/** The regions a dirty-bitmap map marks dirty; asserts that the map covers the export exactly once. */
async function dirtyRegions(uri: string, name: string): Promise<number[]> {
  const lines = await map(uri, `qemu:dirty-bitmap:${name}`);
  const dirty: number[] = [];
  let at = 0;
  for (const [offset, length, flags, description] of lines) {
    assert.equal(offset, at, `${name}: the map is contiguous`);
    assert.equal(description, flags === 1 ? 'dirty' : 'clean', `${name}: ${offset} ${length} ${flags} ${description}`);
    assert.equal(offset % regionSize, 0, `${name}: extents start at region boundaries`);
    if (flags === 1) for (let byte = offset; byte < offset + length; byte += regionSize) dirty.push(byte / regionSize);
    at = offset + length;
  }
  assert.equal(at, regions * regionSize, `${name}: the map covers the export`);
  return dirty;
}

test('nbdinfo maps cowmap-next and cowmap-current; qemu-io, qemu-img and nbdcopy with structured replies', {
  skip: missingTools(),
}, async () => {
  const volume = ReplicatedVolume.create(new NodeStorage(), join(root, 'vol'), { regions, regionSize });
  const server = new NbdServer(volume, { log: () => {} });
  const port = (await server.listen({ port: 0 })) as number;
  const uri = `nbd://127.0.0.1:${port}`;
  try {
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0xab 70000 10', '-c', 'write -P 0xcd 524288 131072', uri]);
    await run('qemu-io', ['-f', 'raw', '-c', `write -P 0x11 ${15 * regionSize + 5} 1`, uri]);
    assert.deepEqual(await dirtyRegions(uri, 'cowmap-next'), [1, 8, 9, 15]);
    assert.deepEqual(await dirtyRegions(uri, 'cowmap-current'), [], 'C is clear while idle');
    assert.deepEqual(await qemuDirtyRegions(port, 'cowmap-next'), [1, 8, 9, 15]);
    volume.startCycle();
    assert.deepEqual(await qemuDirtyRegions(port, 'cowmap-current'), [1, 8, 9, 15]);
    assert.deepEqual(await dirtyRegions(uri, 'cowmap-current'), [1, 8, 9, 15]);
    assert.deepEqual(await dirtyRegions(uri, 'cowmap-next'), []);
    assert.deepEqual(await map(uri), [[0, regions * regionSize, 0, 'data']], 'base:allocation: all data');
    const qemuMap = JSON.parse(await run('qemu-img', ['map', '--output=json', '-f', 'raw', uri]));
    assert.deepEqual(
      qemuMap.map((entry: { start: number; length: number; data: boolean; zero: boolean }) => [
        entry.start,
        entry.length,
        entry.data,
        entry.zero,
      ]),
      [[0, regions * regionSize, true, false]],
    );
    await run('qemu-io', [
      '-f',
      'raw',
      '-c',
      'read -P 0xab 70000 10',
      '-c',
      'read -P 0xcd 524288 131072',
      '-c',
      'read -P 0 0 70000',
      uri,
    ]);
    volume.transferRegions(volume.currentRegions());
    volume.completeCycle();
    assert.deepEqual(await dirtyRegions(uri, 'cowmap-current'), []);
    await copyInAndOut(uri);
    assert.deepEqual(
      await dirtyRegions(uri, 'cowmap-next'),
      Array.from({ length: regions }, (_, region) => region),
    );
  } finally {
    await server.close();
    volume.close();
  }
});

/**
 * The dirty regions as QEMU's own client reads a bitmap: `qemu-img map` with the nbd
 * driver's x-dirty-bitmap option, which reports a dirty extent as `"data": false`.
 */
async function qemuDirtyRegions(port: number, name: string): Promise<number[]> {
  const options = `driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=${port},x-dirty-bitmap=qemu:dirty-bitmap:${name}`;
  const entries = JSON.parse(await run('qemu-img', ['map', '--output=json', '--image-opts', options]));
  const dirty: number[] = [];
  for (const { start, length, data } of entries as { start: number; length: number; data: boolean }[]) {
    if (!data) for (let byte = start; byte < start + length; byte += regionSize) dirty.push(byte / regionSize);
  }
  return dirty;
}

/** nbdcopy of random bytes into the export and back out: both copies equal the bytes. */
async function copyInAndOut(uri: string): Promise<void> {
  const seed = Number(process.env.COWMAP_SEED ?? Date.now() % 1_000_000);
  process.stdout.write(`# nbdcopy content seed ${seed} (COWMAP_SEED=${seed} to repeat)\n`);
  const prng = new Prng(seed);
  const bytes = Buffer.from(Uint8Array.from({ length: regions * regionSize }, () => prng.nextInt(256)));
  const source = join(root, 'source.img');
  const back = join(root, 'back.img');
  writeFileSync(source, bytes);
  writeFileSync(back, Buffer.alloc(0));
  await run('nbdcopy', [source, uri]);
  await run('nbdcopy', [uri, back]);
  assert.ok(readFileSync(back).equals(bytes), 'nbdcopy out of the export gives back what nbdcopy put in');
}
