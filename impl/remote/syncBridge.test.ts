// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { atLevel } from '../../harness/testLevel.ts';
import { BridgeFault, RemoteError, SyncBridge } from './syncBridge.ts';

const handlers = new URL('./bridgeTestHandlers.ts', import.meta.url);

test('a bridge keeps its worker state between calls and carries bytes both ways', (t) => {
  const bridge = new SyncBridge(handlers);
  t.after(() => bridge.close());
  assert.equal(bridge.call('count', {}, 5_000), 1);
  assert.equal(bridge.call('count', {}, 5_000), 2);
  const bytes = new Uint8Array([0, 1, 2, 250]);
  assert.deepEqual(bridge.call('echo', { bytes, delayMs: 20 }, 5_000), new Uint8Array([255, 254, 253, 5]));
  assert.equal(bridge.usable, true);
});

test("a handler's error arrives with its name and fields, and the bridge stays usable", (t) => {
  const bridge = new SyncBridge(handlers);
  t.after(() => bridge.close());
  assert.throws(
    () => bridge.call('fail', { errno: 5 }, 5_000),
    (error: unknown) =>
      error instanceof RemoteError &&
      error.remoteName === 'ReplyLikeError' &&
      error.fields.errno === 5 &&
      /failed with 5/.test(error.message),
  );
  assert.equal(bridge.call('count', {}, 5_000), 1);
  assert.throws(() => bridge.call('nothing', {}, 5_000), /unknown operation nothing/);
});

test('a call past its deadline is a BridgeFault and breaks the bridge', (t) => {
  const bridge = new SyncBridge(handlers);
  t.after(() => bridge.close());
  bridge.call('count', {}, 5_000); // started
  assert.throws(() => bridge.call('echo', { bytes: new Uint8Array(1), delayMs: 3_000 }, 200), BridgeFault);
  assert.equal(bridge.usable, false);
  assert.throws(() => bridge.call('count', {}, 5_000), BridgeFault);
});

for (const op of ['exit', 'hang'] as const) {
  // The hang at the full level only: its heartbeat check is the exit's.
  const skip =
    op === 'hang' ? atLevel<string | undefined>('make verify only (COWMAP_TEST_LEVEL=full)', undefined) : undefined;
  test(`a worker that ${op === 'exit' ? 'dies' : 'hangs'} mid-call is a BridgeFault, not a hang`, { skip }, (t) => {
    const bridge = new SyncBridge(handlers, { heartbeatLostMs: 600 });
    t.after(() => bridge.close());
    bridge.call('count', {}, 5_000);
    assert.throws(() => bridge.call(op, {}, 60_000), op === 'exit' ? /the worker exited/ : /stopped \(no heartbeat/);
  });
}

test('the worker loads TypeScript when the process registered tsx through its API, as bin/cowmap.js does', (t) => {
  // A child without --import tsx: only the register() call of bin/cowmap.js, from a script file.
  const dir = mkdtempSync(join(tmpdir(), 'cowmap-bridge-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'child.mjs');
  writeFileSync(
    script,
    [
      `const { register } = await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))});`,
      'register();',
      `const { SyncBridge } = await import(${JSON.stringify(new URL('./syncBridge.ts', import.meta.url).href)});`,
      `const bridge = new SyncBridge(new URL(${JSON.stringify(handlers.href)}));`,
      "bridge.call('count', {}, 5000);",
      "process.stdout.write(String(bridge.call('count', {}, 5000)));",
      'bridge.close();',
    ].join('\n'),
  );
  const child = spawnSync(process.execPath, [script], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 60_000,
  });
  assert.equal(child.stderr, '');
  assert.equal(child.stdout, '2');
  assert.equal(child.status, 0);
});
