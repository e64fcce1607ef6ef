// End to end, scenario e: `cowmap receive` as the far side, `cowmap serve` as the
// primary, ext4 images (mke2fs -d) copied onto the primary's NBD export with
// nbdcopy. A first file system is replicated by a completed cycle; a second one is
// copied on and the primary is killed (SIGKILL of its process group) as soon as its
// cycle swapped. Then `cowmap read DIR2 --consistent` equals the image of the last
// completed cycle (cmp) and e2fsck -fn finds it clean; the primary started again
// resumes the cycle, and the consistent image is then the second file system (that
// part at the full level only: it starts three more processes).

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { atLevel } from '../../../harness/testLevel.ts';
import { cowmapScript, freshDir, missing, root, run } from '../../nbd/nbdTestTools.ts';
import { type ServeChild, startServeChild } from '../../nbd/serveChild.ts';
import { seedFrom, testRandom } from '../../nbd/testRandom.ts';
import { initRemote, readToFile, samePrefix } from './remoteCli.ts';
import { type SecondaryServer, startServer } from './secondaryServers.ts';

const geometry = { regions: 128, regionSize: 65536 }; // 8 MiB
const sizeBytes = geometry.regions * geometry.regionSize;
const seed = seedFrom('COWMAP_E2E_SEED');
process.stderr.write(`# remote end-to-end e: seed ${seed} (COWMAP_E2E_SEED=${seed} repeats it)\n`);

/** An ext4 image of `sizeBytes` holding `files` seeded files in two directories (mke2fs -d). */
async function ext4Image(name: string, files: number, seedOffset: number): Promise<string> {
  const random = testRandom(seed + seedOffset);
  const tree = join(root, `${name}.tree`);
  mkdirSync(join(tree, 'sub'), { recursive: true });
  for (let index = 0; index < files; index++) {
    const where = index % 2 === 0 ? tree : join(tree, 'sub');
    writeFileSync(join(where, `${name}-${index}.bin`), random.bytes(random.integer(1000, 300_000)));
  }
  const image = join(root, `${name}.img`);
  await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, image, `${sizeBytes >> 10}K`]);
  return image;
}

function startReceiver(dir2: string, socketPath: string): Promise<SecondaryServer> {
  const args = [cowmapScript, 'receive', dir2, '--socket', socketPath];
  args.push('--regions', String(geometry.regions), '--region-size', String(geometry.regionSize));
  return startServer('cowmap receive', process.execPath, args, { kind: 'unix', socketPath });
}

async function copyOnto(image: string, socket: string): Promise<void> {
  await run('nbdcopy', ['--flush', image, `nbd+unix:///?socket=${socket}`]);
}

/** `cowmap read DIR2 --consistent` (the receiver stopped) equals `image`, and e2fsck -fn finds it clean. */
async function checkConsistent(dir2: string, image: string, what: string): Promise<void> {
  const out = join(root, `consistent-${what}.img`);
  await readToFile(dir2, sizeBytes, out, ['--consistent']);
  assert.ok(
    await samePrefix(out, image, sizeBytes),
    `seed ${seed}: ${what}: the consistent image is the last completed cycle's`,
  );
  const fsck = await run('e2fsck', ['-fn', out], { allowFail: true });
  assert.equal(fsck.status, 0, `${what}: e2fsck -fn\n${fsck.stdout}${fsck.stderr}`);
}

test('e. the primary killed mid-cycle: the receiver keeps the last completed file system, e2fsck-clean; a restart completes the next', {
  skip: missing('mke2fs', 'e2fsck', 'nbdcopy', 'cmp'),
}, async (t) => {
  const [first, second] = [await ext4Image('first', 8, 1), await ext4Image('second', 12, 2)];
  const dir = freshDir();
  const dir2 = freshDir();
  const receiveSocket = join(root, 'e.receive.sock');
  const serveSocket = join(root, 'e.serve.sock');
  let receiver = await startReceiver(dir2, receiveSocket);
  let serve: ServeChild | null = null;
  try {
    await initRemote(dir, geometry, receiver.url);
    serve = startServeChild([dir, '--socket', serveSocket, '--batch-regions', '1']);
    await serve.waitFor(/^serving /);
    await copyOnto(first, serveSocket);
    serve.child.kill('SIGUSR1');
    await serve.waitFor(/^cycle 1: completed/, 30_000);
    await copyOnto(second, serveSocket);
    serve.child.kill('SIGUSR1');
    await serve.waitFor(/^cycle 2: swap/);
    await serve.stop(); // SIGKILL of the group, right after the swap
    const secondCompleted = serve.lines.some((line) => /^cycle 2: completed/.test(line));
    await receiver.kill();
    await checkConsistent(dir2, secondCompleted ? second : first, 'after the kill');
    t.diagnostic(
      `e: the primary was killed ${secondCompleted ? 'after cycle 2 completed (a fast machine)' : 'inside cycle 2'}`,
    );

    if (atLevel(true, false) && !secondCompleted) return;
    receiver = await startReceiver(dir2, receiveSocket);
    serve = startServeChild([dir, '--socket', serveSocket, '--batch-regions', '1']);
    await serve.waitFor(/^serving /);
    if (!secondCompleted) await serve.waitFor(/^cycle 2: resumed and completed/, 30_000);
    serve.child.kill('SIGTERM');
    assert.equal(await serve.exited, 0, serve.stderr());
    await receiver.kill();
    await checkConsistent(dir2, second, 'after the resumed cycle');
  } finally {
    await serve?.stop();
    await receiver.kill();
  }
});
