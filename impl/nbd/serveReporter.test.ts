// What a running server tells (serveReporter.ts, cycles.ts): the cycle lines only
// for cycles that send something, with the lag; a summary line when no cycle sent
// anything in its period; the status file while it listens, removed when it stops.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { NbdServer } from './server.ts';
import { readServeStatus, serveStatusPath } from './serveStatus.ts';

const root = mkdtempSync(join(tmpdir(), 'cowmap-reporter-'));
after(() => rmSync(root, { recursive: true, force: true }));

const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('cycle lines for a cycle that sends, none for an empty one; summaries; the status file', async () => {
  const volume = ReplicatedVolume.create(new NodeStorage(), join(root, 'v'), { regions: 8, regionSize: 4096 });
  const lines: string[] = [];
  const server = new NbdServer(volume, { log: (line) => lines.push(line), summaryEverySeconds: 0.1 });
  await server.listen({ port: 0 });
  try {
    const status = readServeStatus(volume.dir);
    assert.ok(status !== null, 'a status file while listening');
    assert.match(status.listening, /^127\.0\.0\.1:\d+$/);
    assert.equal(status.lastCompletedSwapAt, null);

    server.requestCycle(); // nothing to send
    await server.whenIdle();
    assert.deepEqual(
      lines.filter((line) => line.startsWith('cycle')),
      [],
    );
    await settle(250);
    const summaries = lines.filter((line) => line.startsWith('summary: '));
    assert.ok(summaries.length >= 1, lines.join('\n'));
    assert.match(
      summaries[0]!,
      /^summary: 1 cycle\(s\) run in the last 0\.1 s, 0 request\(s\), 0 bytes written, lag \d+\.\d{3} s$/,
    );

    volume.writeMany([{ offset: 100, bytes: new Uint8Array(5000).fill(1) }]); // regions 0 and 1
    lines.length = 0;
    server.requestCycle();
    await server.whenIdle();
    const cycleLines = lines.filter((line) => line.startsWith('cycle'));
    assert.equal(cycleLines.length, 2, cycleLines.join('\n'));
    assert.match(cycleLines[0]!, /^cycle 2: swap, 2 region\(s\) to send$/);
    assert.match(
      cycleLines[1]!,
      /^cycle 2: completed, sent 2 region\(s\), 8192 bytes in \d+\.\d{3} s, lag \d+\.\d{3} s$/,
    );
    const after = readServeStatus(volume.dir);
    assert.ok(after !== null);
    assert.deepEqual([after.cyclesCompleted, after.lastCompletedCycle, after.phase], [2, 2, 'idle']);
    assert.notEqual(after.lastCompletedSwapAt, null);
    // A directory secondary: no link to report, no retries.
    assert.equal(after.link, null);
    assert.deepEqual([after.retry.paused, after.retry.faultsTotal, after.retry.lastError], [false, 0, null]);
  } finally {
    await server.close();
    volume.close();
  }
  assert.equal(existsSync(serveStatusPath(join(root, 'v'))), false, 'the status file goes when the server stops');
});
