// serveAdapter in process, over streams: a line longer than the bound is skipped
// and answered, and an internal error of the volume is answered E_IO while the
// server goes on. `cowmap adapter` on a real process is harness/adapterServer.test.ts.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import type { Json } from './rawAdapter.ts';
import { serveAdapter } from './serveAdapter.ts';

const scratch = mkdtempSync(join(tmpdir(), 'cowmap-serve-adapter-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const regionSize = 512;

describe('serveAdapter over streams', () => {
  it('skips a line longer than the bound and answers E_BAD_REQUEST with id null, then goes on', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const logs: string[] = [];
    const done = serveAdapter({
      input,
      output,
      maxLineBytes: 64,
      log: (line) => logs.push(line),
      exit: () => assert.fail('no exit'),
    });
    const chunks: Buffer[] = [];
    output.on('data', (chunk: Buffer) => chunks.push(chunk));
    input.write(`{"id": 1, "op": "hello", "pad": "${'x'.repeat(40)}`);
    input.write(`${'y'.repeat(200)}"}\n{"id": 2, "op": "hello"}\n`);
    input.end();
    assert.equal(await done, 0);
    const responses = Buffer.concat(chunks)
      .toString()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    assert.equal(responses.length, 2);
    assert.deepEqual([responses[0]!.id, responses[0]!.error.code], [null, 'E_BAD_REQUEST']);
    assert.match(responses[0]!.error.message, /exceeds 64 bytes/);
    assert.deepEqual([responses[1]!.id, responses[1]!.ok], [2, true]);
    assert.equal(logs.length, 1);
  });

  it('answers E_IO for an internal error, drops the volume, and keeps serving', async () => {
    class Broken extends ReplicatedVolume {
      protected override swapMaps(): void {
        throw new TypeError('a bug in swapMaps');
      }
    }
    const input = new PassThrough();
    const output = new PassThrough();
    const logs: string[] = [];
    const done = serveAdapter({
      input,
      output,
      volumeClass: Broken,
      log: (line) => logs.push(line),
      exit: () => assert.fail('no exit'),
    });
    const chunks: Buffer[] = [];
    output.on('data', (chunk: Buffer) => chunks.push(chunk));
    const dir = join(scratch, 'volume');
    for (const request of [
      { id: 1, op: 'open', dir, create: true, regions: 2, regionSize },
      { id: 2, op: 'startCycle' },
      { id: 3, op: 'state' },
      { id: 4, op: 'open', dir, create: false },
      { id: 5, op: 'state' },
    ]) {
      input.write(`${JSON.stringify(request)}\n`);
    }
    input.end();
    assert.equal(await done, 0);
    const responses = Buffer.concat(chunks)
      .toString()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    assert.deepEqual(
      responses.map((response) => (response.ok ? 'ok' : response.error.code)),
      ['ok', 'E_IO', 'E_PHASE', 'ok', 'ok'],
    );
    assert.match(responses[1]!.error.message, /internal error: a bug in swapMaps/);
    assert.equal(responses[4]!.phase, 'idle');
    assert.match(logs.join('\n'), /TypeError: a bug in swapMaps/);
  });
});
