// The primary's side of the remote end-to-end tests (no tests here): the cowmap
// commands as users run them (in this process where a process start would only
// cost time, as a child where the output is binary or the process must die), the
// export's file of the right size, seeded writes, and the comparisons (cmp -n).
// Test-only: nothing outside *.test.ts imports this folder.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInProcess } from '../../../bin/runInProcess.ts';
import type { Geometry } from '../../geometry.ts';
import { cowmapScript, run } from '../../nbd/nbdTestTools.ts';
import type { TestRandom } from '../../nbd/testRandom.ts';
import {
  type ControlBlock,
  controlBlockSize,
  controlOffsetOf,
  decodeControlBlock,
  exportSizeOf,
} from '../controlBlock.ts';

/** `cowmap ARGS` in this process; its stdout as text. Fails the test on a non-zero exit, with stderr. */
export async function cowmap(...args: string[]): Promise<string> {
  const result = await runInProcess(args);
  assert.equal(result.status, 0, `cowmap ${args.join(' ')}: exit ${result.status}\n${result.stderr}`);
  return result.stdout.toString('utf8');
}

/** `cowmap ARGS` in this process, whatever its exit: status and stderr. */
export async function cowmapMayFail(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const result = await runInProcess(args);
  return { status: result.status, stdout: result.stdout.toString('utf8'), stderr: result.stderr };
}

/** `cowmap init DIR --regions N --region-size B --secondary URL`: a volume whose secondary is the export at `url`. */
export async function initRemote(dir: string, geometry: Geometry, url: string): Promise<void> {
  const { regions, regionSize } = geometry;
  await cowmap('init', dir, '--regions', String(regions), '--region-size', String(regionSize), '--secondary', url);
}

/** An all-zero file of the export size a volume of `geometry` needs (its image, then the control block). */
export function makeExportFile(path: string, geometry: Geometry): string {
  writeFileSync(path, '');
  truncateSync(path, exportSizeOf(geometry));
  return path;
}

/** The control block at the end of an export's file, or null when that region is not a valid block. */
export function controlBlockOf(exportFile: string, geometry: Geometry): ControlBlock | null {
  const bytes = readFileSync(exportFile).subarray(
    controlOffsetOf(geometry),
    controlOffsetOf(geometry) + controlBlockSize,
  );
  const decoded = decodeControlBlock(bytes);
  return decoded.kind === 'block' ? decoded.block : null;
}

/** `cmp -n bytes a b` exits 0: the first `bytes` bytes of the two files are equal. */
export async function samePrefix(a: string, b: string, bytes: number): Promise<boolean> {
  const result = await run('cmp', ['-n', String(bytes), a, b], { allowFail: true });
  return result.status === 0;
}

/**
 * `count` seeded writes of 1 byte to 3 regions each at seeded offsets of a volume
 * of `sizeBytes`, through `cowmap write DIR --offset O --file F`; returns the
 * regions they touched.
 */
export async function seededWrites(
  dir: string,
  scratch: string,
  random: TestRandom,
  geometry: Geometry,
  count: number,
): Promise<Set<number>> {
  const sizeBytes = geometry.regions * geometry.regionSize;
  const touched = new Set<number>();
  for (let index = 0; index < count; index++) {
    const length = random.integer(1, 3 * geometry.regionSize);
    const offset = random.integer(0, sizeBytes - length);
    const file = join(scratch, `write-${index}`);
    writeFileSync(file, random.bytes(length));
    await cowmap('write', dir, '--offset', String(offset), '--file', file);
    const last = Math.floor((offset + length - 1) / geometry.regionSize);
    for (let region = Math.floor(offset / geometry.regionSize); region <= last; region++) touched.add(region);
  }
  return touched;
}

/** `cowmap read DIR --offset 0 --length L [flags]` as a child (binary output) into `outFile`. */
export async function readToFile(
  dir: string,
  length: number,
  outFile: string,
  flags: readonly string[] = [],
): Promise<void> {
  const fd = openSync(outFile, 'w');
  try {
    const child = spawn(
      process.execPath,
      [cowmapScript, 'read', dir, '--offset', '0', '--length', String(length), ...flags],
      {
        stdio: ['ignore', fd, 'pipe'],
      },
    );
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(status, 0, `cowmap read ${dir} ${flags.join(' ')}: ${stderr}`);
  } finally {
    closeSync(fd);
  }
}
