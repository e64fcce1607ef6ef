// `cowmap serve` as users run it (a child process), killed with SIGKILL during
// writes: acknowledged writes survive the process, the interrupted cycle resumes, a
// file system copied on afterwards passes e2fsck on the secondary.

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { freshDir, missing, root, run, serveChild } from './nbdTestTools.ts';

test('d. cowmap serve killed during writes: acknowledged writes survive, the cycle resumes, e2fsck passes on the secondary', {
  skip: missing('qemu-io', 'mke2fs', 'e2fsck', 'nbdcopy'),
}, async (t) => {
  const dir = freshDir();
  ReplicatedVolume.create(new NodeStorage(), dir, { regions: 256, regionSize: 65536 }).close(); // 16 MiB
  const socket = join(root, 'd.sock');
  const uri = `nbd+unix:///?socket=${socket}`;
  const first = serveChild([dir, '--socket', socket, '--cycle-every', '0.05', '--batch-regions', '1']);
  await first.waitFor(/^serving /);
  // 64 writes of 128 KiB, each followed by a flush; killed part way.
  const args = ['-f', 'raw'];
  for (let index = 0; index < 64; index++)
    args.push('-c', `write -P ${index + 1} ${index * 131072 * 2} 131072`, '-c', 'flush');
  const writer = spawn('qemu-io', [...args, uri], { stdio: ['ignore', 'pipe', 'pipe'] });
  let written = '';
  writer.stdout.on('data', (chunk) => (written += chunk));
  const writerDone = new Promise((resolve) => writer.on('close', resolve));
  // Kill right after a swap with regions to send, once some writes were acknowledged.
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const acknowledged = (written.match(/^wrote /gm) ?? []).length;
      const swapped = first.lines.some((line) => /swap, ([1-9]\d*) region/.test(line));
      if ((acknowledged >= 16 && swapped) || acknowledged >= 60) {
        const lastSwap = first.lines.findLastIndex((line) => /swap, [1-9]\d* region/.test(line));
        const completedAfter = first.lines.slice(lastSwap).some((line) => line.includes('completed'));
        if (!completedAfter || acknowledged >= 60) {
          clearInterval(timer);
          first.child.kill('SIGKILL');
          resolve();
        }
      }
    }, 1);
  });
  await writerDone;
  await new Promise((resolve) =>
    first.child.exitCode !== null || first.child.signalCode !== null ? resolve(null) : first.child.on('exit', resolve),
  );
  const acknowledged = [...written.matchAll(/^wrote 131072\/131072 bytes at offset (\d+)/gm)].map((match) =>
    Number(match[1]),
  );
  assert.ok(acknowledged.length > 0);
  const reopened = ReplicatedVolume.open(new NodeStorage(), dir);
  const interrupted = reopened.phase === 'replicating';
  reopened.close();
  t.diagnostic(
    `d: ${acknowledged.length} writes acknowledged before the kill; killed ${interrupted ? 'inside a cycle' : 'between cycles'}`,
  );
  if (existsSync(socket)) rmSync(socket);

  const second = serveChild([dir, '--socket', socket]);
  await second.waitFor(/^serving /);
  if (interrupted) await second.waitFor(/resumed and completed/);
  // The client reconnects: every acknowledged write is there (a process kill: the OS keeps
  // what the server wrote into P; a power loss would keep only the flushed writes).
  const check = ['-f', 'raw'];
  for (const offset of acknowledged) check.push('-c', `read -P ${offset / (131072 * 2) + 1} ${offset} 131072`);
  const verified = await run('qemu-io', [...check, uri]);
  assert.doesNotMatch(verified.stdout + verified.stderr, /Pattern verification failed/);
  // Then a file system over it, a cycle on demand (SIGUSR1), and e2fsck on the secondary.
  const work = join(root, 'd');
  mkdirSync(join(work, 'tree'), { recursive: true });
  for (let index = 0; index < 10; index++)
    writeFileSync(join(work, 'tree', `f${index}`), Buffer.alloc(50000 * (index + 1), index));
  const image = join(work, 'fs.img');
  await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', join(work, 'tree'), image, '16M']);
  await run('nbdcopy', ['--flush', image, uri]);
  const cyclesBefore = second.lines.filter((line) => line.includes('completed')).length;
  second.child.kill('SIGUSR1');
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (second.lines.filter((line) => line.includes('completed')).length > cyclesBefore) {
        clearInterval(timer);
        clearTimeout(limit);
        resolve();
      }
    }, 10);
    const limit = setTimeout(() => {
      clearInterval(timer);
      reject(new Error(second.lines.join('\n')));
    }, 20000);
  });
  second.child.kill('SIGTERM');
  await second.waitFor(/^stopped \(SIGTERM\)/);
  const secondary = join(dir, 'secondary', 'image');
  assert.ok(readFileSync(secondary).equals(readFileSync(image)), 'the secondary is the file system image');
  const fsck = await run('e2fsck', ['-fn', secondary], { allowFail: true });
  assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
});
