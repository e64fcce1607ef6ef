// The protocol's own rules: both adapters we have pass every check; an adapter
// that accepts whatever it is sent fails the checks of the rules it ignores, with
// messages that name the request sent and the answer got; a rejection with an
// empty message fails; the checks stop when asked.

import './noChildCoverage.ts'; // first: the adapters and cowmap processes it starts write no coverage files
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { protocolChecks, runProtocolChecks } from './protocolChecks.ts';
import type { ProtocolCheckResult } from './protocolChecks.ts';

const bin = fileURLToPath(new URL('../bin/cowmap.js', import.meta.url));
const pythonAdapter = fileURLToPath(new URL('../examples/python-adapter/adapter.py', import.meta.url));

// An adapter that says ok to everything and reports an all-zero state of the
// volume it was last asked to create; `empty-messages` rejects every write with
// E_BAD_REQUEST and an empty message.
const lenientAdapter = `
const behavior = process.argv[1];
let regions = 9;
let buffered = '';
const zero = '5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';
process.stdin.on('data', (chunk) => {
  buffered += chunk;
  let newline;
  while ((newline = buffered.indexOf('\\n')) >= 0) {
    const request = JSON.parse(buffered.slice(0, newline));
    buffered = buffered.slice(newline + 1);
    const ok = (fields) => process.stdout.write(JSON.stringify({ id: request.id, ok: true, ...fields, io: 0 }) + '\\n');
    if (request.op === 'hello') ok({ protocol: 1, name: 'lenient', version: '0', features: [] });
    else if (request.op === 'open') {
      if (request.create === true && Number.isInteger(request.regions) && request.regions > 0) regions = request.regions;
      ok({ phase: 'idle' });
    }
    else if (request.op === 'state') {
      const bits = '0'.repeat(regions);
      const contents = Array(regions).fill(zero);
      ok({ phase: 'idle', current: bits, next: bits, cow: bits, primary: contents, secondary: contents, cowData: Array(regions).fill(null) });
    }
    else if (behavior === 'empty-messages' && request.op === 'write') {
      const error = { code: 'E_BAD_REQUEST', message: '' };
      process.stdout.write(JSON.stringify({ id: request.id, ok: false, error, io: 0 }) + '\\n');
    }
    else ok({});
  }
});
`;

function byName(results: readonly ProtocolCheckResult[]): Map<string, ProtocolCheckResult> {
  return new Map(results.map((result) => [result.name, result]));
}

describe('protocol checks', () => {
  for (const [label, command] of [
    ['`cowmap adapter` (the reference)', [process.execPath, bin, 'adapter']],
    ['the Python example', ['python3', pythonAdapter]],
  ] as const) {
    it(`${label} passes every check`, async () => {
      const results = await runProtocolChecks({ command, requestTimeoutMs: 30_000 });
      assert.equal(results.length, protocolChecks.length);
      const failed = results.filter((result) => !result.passed);
      assert.deepEqual(
        failed.map((result) => `${result.name}: ${result.message}`),
        [],
      );
    });
  }

  it('an adapter that accepts everything fails the rules it ignores, naming the request and the answer', async () => {
    const results = byName(
      await runProtocolChecks({
        command: [process.execPath, '-e', lenientAdapter, 'lenient'],
        requestTimeoutMs: 10_000,
      }),
    );
    const unknown = results.get('unknown op')!;
    assert.equal(unknown.passed, false);
    assert.match(unknown.message!, /sent \{"op":"frobnicate","region":0\}: expected E_BAD_REQUEST, got ok/);
    assert.match(
      results.get('bad request: write without data')!.message!,
      /sent \{"op":"write","region":0\}: expected E_BAD_REQUEST, got ok/,
    );
    assert.match(results.get('open create over an existing volume')!.message!, /expected E_EXISTS, got ok/);
    assert.match(results.get('open of a missing volume')!.message!, /expected E_NOT_FOUND, got ok/);
    assert.match(results.get('open of a volume another process holds')!.message!, /expected E_LOCKED, got ok/);
    assert.match(results.get('forbidden geometry: 4 x 513 B')!.message!, /"regionSize":513.*expected E_SIZE, got ok/);
    // It keeps no data, so a kill changes nothing it reports.
    assert.equal(results.get('reopen after a kill')!.passed, true);
  });

  it('a rejection with an empty message fails', async () => {
    const results = byName(
      await runProtocolChecks({
        command: [process.execPath, '-e', lenientAdapter, 'empty-messages'],
        requestTimeoutMs: 10_000,
      }),
    );
    assert.match(
      results.get('bad request: write without data')!.message!,
      /answered E_BAD_REQUEST with an empty message/,
    );
  });

  it('stops between checks when asked', async () => {
    let calls = 0;
    const results = await runProtocolChecks({
      command: ['python3', pythonAdapter],
      requestTimeoutMs: 30_000,
      shouldStop: () => ++calls > 2,
    });
    assert.equal(results.length, 2);
  });
});
