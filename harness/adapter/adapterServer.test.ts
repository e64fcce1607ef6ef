// `cowmap adapter` as a client sees it, through raw lines on a real process:
// hello, every op, E_BAD_REQUEST for whatever a client may send, E_PHASE with no
// volume, failpoints that count across requests and exit with 86 without an
// answer (process and power modes, recovered by a new process), --mutant, and the
// end of input. The oversized-line path and internal errors run in process over
// streams (adapter/serveAdapter.test.ts); the raw-line client is adapter/rawAdapter.ts.

import '../noChildCoverage.ts'; // first: the adapters and cowmap processes it starts write no coverage files
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { failpointExitCode } from './adapterServer.ts';
import { type Json, killRunningAdapters, ok, RawAdapter, rejected } from './rawAdapter.ts';

const scratch = mkdtempSync(join(tmpdir(), 'cowmap-adapter-server-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
// A failing case leaves its adapters running, which would keep the file from ending.
after(killRunningAdapters);

const regionSize = 512;
let dirCount = 0;
function freshDir(): string {
  return join(scratch, `volume-${++dirCount}`);
}

function content(label: string): Buffer {
  const bytes = Buffer.alloc(regionSize);
  bytes.write(label, 'utf8');
  return bytes;
}

function digest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const zeroDigest = digest(Buffer.alloc(regionSize));

function b64(label: string): string {
  return content(label).toString('base64');
}

// Two processes' tests side by side: each mostly waits on its process.
describe('cowmap adapter (raw lines)', { concurrency: 2 }, () => {
  it('answers hello, and E_BAD_REQUEST for everything malformed, without dying; with no volume open, E_PHASE', async () => {
    const adapter = new RawAdapter();
    const hello = await ok(adapter, 'hello');
    assert.equal(hello.protocol, 1);
    assert.equal(hello.name, 'cowmap-reference');
    assert.equal(typeof hello.version, 'string');
    assert.deepEqual(hello.features, ['failpoint', 'power-loss', 'torn', 'consistent']);
    assert.equal(hello.io, 0);

    // Lines that cannot be read: answered with id null.
    const unreadable: (string | Buffer)[] = [
      'hello there',
      '{"id": 1, "op": "hello"',
      '[1, 2]',
      '42',
      'null',
      '{}',
      '{"op": "hello"}',
      '{"id": "1", "op": "hello"}',
      '{"id": 1.5, "op": "hello"}',
      '{"id": null, "op": "hello"}',
      '{"id": 1e300, "op": "hello"}',
      Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x31, 0xff, 0xfe, 0x7d]),
      '['.repeat(100_000),
    ];
    for (const line of unreadable) {
      adapter.send(line);
      const response = await adapter.next();
      assert.ok(response !== null);
      assert.equal(response.id, null, String(line).slice(0, 40));
      assert.equal(response.ok, false);
      assert.equal(response.error.code, 'E_BAD_REQUEST');
      assert.equal(response.io, 0);
    }
    // A blank line gets no answer; the next request is answered in order.
    adapter.send('');
    adapter.send('   ');
    // Readable id, bad request: answered with the id.
    await rejected(adapter, 'E_BAD_REQUEST', 'frobnicate');
    await rejected(adapter, 'E_BAD_REQUEST', '__proto__');
    await rejected(adapter, 'E_BAD_REQUEST', 'constructor');
    await rejected(adapter, 'E_BAD_REQUEST', 'toString');
    adapter.send('{"id": 900, "op": 7}');
    assert.equal((await adapter.next())?.id, 900);
    adapter.send('{"id": 901}');
    assert.equal((await adapter.next())?.error.code, 'E_BAD_REQUEST');
    const badFields: [string, Json][] = [
      ['open', {}],
      ['open', { dir: 7, create: true, regions: 4, regionSize }],
      ['open', { dir: '', create: false }],
      ['open', { dir: freshDir(), create: 'yes' }],
      ['open', { dir: freshDir(), create: true }],
      ['open', { dir: freshDir(), create: true, regions: 4 }],
      ['open', { dir: freshDir(), create: true, regions: '4', regionSize }],
      ['open', { dir: freshDir(), create: true, regions: 4, regionSize: 512.5 }],
      ['write', { data: b64('A1') }],
      ['write', { region: '1', data: b64('A1') }],
      ['write', { region: true, data: b64('A1') }],
      ['write', { region: 1.5, data: b64('A1') }],
      ['write', { region: 1 }],
      ['write', { region: 1, data: 'not base64!' }],
      ['write', { region: 1, data: 'QUJD' + '=' }],
      ['write', { region: 1, data: b64('A1').replace(/=+$/, '') }],
      ['write', { region: null, data: b64('A1') }],
      ['write', { region: 1, data: [1, 2, 3] }],
      ['read', { region: 0 }],
      ['read', { region: 0, volume: 'tertiary' }],
      ['read', { volume: 'primary' }],
      ['transfer', {}],
      ['transfer', { region: null }],
      ['failpoint', {}],
      ['failpoint', { crashAfterIo: -1 }],
      ['failpoint', { crashAfterIo: 1.5 }],
      ['failpoint', { crashAfterIo: '3' }],
      ['failpoint', { crashAfterIo: 3, mode: 'flood' }],
      ['failpoint', { crashAfterIo: 3, mode: 'power', seed: 'x' }],
      ['failpoint', { crashAfterIo: 3, mode: 'power', torn: 'yes' }],
    ];
    for (const [op, fields] of badFields) await rejected(adapter, 'E_BAD_REQUEST', op, fields);
    // Still serving, and none of that armed anything.
    await ok(adapter, 'hello');
    await noVolumeOpen(adapter);
    assert.equal(adapter.stderr.includes('internal error'), false, adapter.stderr);
  });

  /**
   * With no volume open: volume ops are E_PHASE (after E_BAD_REQUEST); hello,
   * failpoint and close work; then the end of input. On the process of the test
   * above, whose requests opened nothing (one process less to start).
   */
  async function noVolumeOpen(adapter: RawAdapter): Promise<void> {
    await rejected(adapter, 'E_PHASE', 'write', { region: 0, data: b64('A1') });
    await rejected(adapter, 'E_PHASE', 'write', { region: 99, data: 'AAAA' });
    await rejected(adapter, 'E_BAD_REQUEST', 'write', { region: 'x', data: b64('A1') });
    await rejected(adapter, 'E_PHASE', 'read', { region: 0, volume: 'secondary' });
    await rejected(adapter, 'E_PHASE', 'startCycle');
    await rejected(adapter, 'E_PHASE', 'transfer', { region: 0 });
    await rejected(adapter, 'E_PHASE', 'completeCycle');
    const state = await rejected(adapter, 'E_PHASE', 'state');
    assert.match(state.error.message, /no volume is open/);
    await ok(adapter, 'close');
    await ok(adapter, 'failpoint', { crashAfterIo: null });
    await rejected(adapter, 'E_NOT_FOUND', 'open', { dir: freshDir(), create: false });
    const file = join(scratch, 'a-file');
    writeFileSync(file, 'not a volume');
    await rejected(adapter, 'E_EXISTS', 'open', { dir: file, create: true, regions: 4, regionSize });
    await rejected(adapter, 'E_NOT_FOUND', 'open', { dir: file, create: false });
    await rejected(adapter, 'E_SIZE', 'open', { dir: freshDir(), create: true, regions: 0, regionSize });
    await rejected(adapter, 'E_SIZE', 'open', { dir: freshDir(), create: true, regions: 4, regionSize: 100 });
    // A refused geometry leaves nothing that fails a valid create in the same directory.
    const sameDir = freshDir();
    for (const [regions, size] of [
      [0, regionSize],
      [-1, regionSize],
      [4, 0],
      [4, 511],
      [4, 513],
      [4, -512],
    ] as const) {
      await rejected(adapter, 'E_SIZE', 'open', { dir: sameDir, create: true, regions, regionSize: size });
    }
    await ok(adapter, 'open', { dir: sameDir, create: true, regions: 4, regionSize });
    await ok(adapter, 'close');
    // A final line without a newline is still a request.
    adapter.child.stdin!.write('{"id": 77, "op": "hello"}');
    adapter.child.stdin!.end();
    assert.equal((await adapter.next())?.id, 77);
    assert.deepEqual(await adapter.exited, { code: 0, signal: null });
  }

  it('serves every op on a volume, with io counts, digests and the rejections of docs/protocol.md section 2', async () => {
    const dir = freshDir();
    const adapter = new RawAdapter();
    const created = await ok(adapter, 'open', { dir, create: true, regions: 4, regionSize });
    assert.equal(created.phase, 'idle');
    assert.ok(created.io > 0, 'create makes durable calls');
    await rejected(adapter, 'E_EXISTS', 'open', { dir, create: true, regions: 4, regionSize });
    // The failed create closed the volume; open it again (recovery inside).
    assert.equal((await ok(adapter, 'open', { dir, create: false })).phase, 'idle');

    const write = await ok(adapter, 'write', { region: 1, data: b64('B1'), extra: 'ignored' });
    assert.ok(write.io > 0);
    assert.equal((await ok(adapter, 'read', { region: 1, volume: 'primary' })).data, b64('B1'));
    assert.equal(
      (await ok(adapter, 'read', { region: 1, volume: 'secondary' })).data,
      Buffer.alloc(regionSize).toString('base64'),
    );
    await rejected(adapter, 'E_RANGE', 'write', { region: 4, data: 'AAAA' });
    await rejected(adapter, 'E_RANGE', 'write', { region: -1, data: b64('X') });
    await rejected(adapter, 'E_SIZE', 'write', { region: 0, data: 'AAAA' });
    await rejected(adapter, 'E_RANGE', 'read', { region: 4, volume: 'primary' });
    await rejected(adapter, 'E_PHASE', 'transfer', { region: 1 });
    await rejected(adapter, 'E_RANGE', 'transfer', { region: 9 });
    await rejected(adapter, 'E_PHASE', 'completeCycle');

    assert.ok((await ok(adapter, 'startCycle')).io > 0);
    await rejected(adapter, 'E_PHASE', 'startCycle');
    await rejected(adapter, 'E_NOT_CURRENT', 'transfer', { region: 0 });
    await rejected(adapter, 'E_NOT_DRAINED', 'completeCycle');
    await ok(adapter, 'write', { region: 1, data: b64('B2') });
    let state = await ok(adapter, 'state');
    assert.deepEqual(
      { phase: state.phase, current: state.current, next: state.next, cow: state.cow, io: state.io },
      { phase: 'replicating', current: '0100', next: '0100', cow: '0100', io: 0 },
    );
    assert.deepEqual(state.primary, [zeroDigest, digest(content('B2')), zeroDigest, zeroDigest]);
    assert.deepEqual(state.cowData, [null, digest(content('B1')), null, null]);
    await ok(adapter, 'transfer', { region: 1 });
    await ok(adapter, 'transfer', { region: 1 });
    await ok(adapter, 'completeCycle');
    state = await ok(adapter, 'state');
    assert.deepEqual(state.secondary, [zeroDigest, digest(content('B1')), zeroDigest, zeroDigest]);
    assert.deepEqual([state.phase, state.current, state.next, state.cow], ['idle', '0000', '0100', '0000']);

    // Another process cannot open it while this one holds it.
    const other = new RawAdapter();
    await rejected(other, 'E_LOCKED', 'open', { dir, create: false });
    assert.deepEqual(await other.end(), { code: 0, signal: null });

    // close, then the same process opens it again; close of nothing is fine.
    await ok(adapter, 'close');
    await ok(adapter, 'close');
    await rejected(adapter, 'E_PHASE', 'state');
    await ok(adapter, 'open', { dir, create: false });
    assert.deepEqual((await ok(adapter, 'state')).secondary, state.secondary);
    assert.deepEqual(await adapter.end(), { code: 0, signal: null });
  });

  it('failpoint: counts from now across requests, exits 86 without answering; a new process recovers (process mode)', async () => {
    const dir = freshDir();
    let adapter = new RawAdapter();
    await ok(adapter, 'open', { dir, create: true, regions: 4, regionSize });
    await ok(adapter, 'write', { region: 0, data: b64('A0') });
    const idleWriteIo = (await ok(adapter, 'write', { region: 2, data: b64('C0') })).io;
    // Armed one call past a whole write: the write answers, the next request crashes.
    await ok(adapter, 'failpoint', { crashAfterIo: idleWriteIo + 1, mode: 'process' });
    assert.equal((await ok(adapter, 'write', { region: 3, data: b64('D0') })).io, idleWriteIo);
    await ok(adapter, 'state'); // no durable call: nothing fires
    const exit = await adapter.crashes('write', { region: 3, data: b64('D1') });
    assert.deepEqual(exit, { code: failpointExitCode, signal: null });
    assert.match(adapter.stderr, /failpoint/);

    adapter = new RawAdapter();
    assert.equal((await ok(adapter, 'open', { dir, create: false })).phase, 'idle');
    let state = await ok(adapter, 'state');
    // Process crash after the first call of the write of D1: D0 or D1 (the OS kept what it got).
    assert.ok([digest(content('D0')), digest(content('D1'))].includes(state.primary[3]));
    assert.deepEqual(state.primary.slice(0, 3), [digest(content('A0')), zeroDigest, digest(content('C0'))]);

    // A crash due right after a request's last call comes before its answer.
    await ok(adapter, 'startCycle');
    await ok(adapter, 'failpoint', { crashAfterIo: 0 });
    await ok(adapter, 'read', { region: 0, volume: 'primary' }); // k = 0: nothing fires without a durable call
    await ok(adapter, 'failpoint', { crashAfterIo: null });
    const transferIo = (await ok(adapter, 'transfer', { region: 0 })).io;
    assert.ok(transferIo > 0);
    await ok(adapter, 'failpoint', { crashAfterIo: transferIo });
    assert.deepEqual(await adapter.crashes('transfer', { region: 0 }), { code: failpointExitCode, signal: null });

    adapter = new RawAdapter();
    assert.equal((await ok(adapter, 'open', { dir, create: false })).phase, 'replicating');
    state = await ok(adapter, 'state');
    assert.equal(state.secondary[0], digest(content('A0')));
    // The sent set was lost with the process.
    await rejected(adapter, 'E_NOT_DRAINED', 'completeCycle');
    // A failpoint armed before open fires inside the create.
    await ok(adapter, 'close');
    await ok(adapter, 'failpoint', { crashAfterIo: 3 });
    assert.deepEqual(await adapter.crashes('open', { dir: freshDir(), create: true, regions: 4, regionSize }), {
      code: failpointExitCode,
      signal: null,
    });
  });

  it('failpoint in power mode discards unsynced writes by the seed (torn accepted); recovery finds old or new', async () => {
    const dir = freshDir();
    let adapter = new RawAdapter();
    await ok(adapter, 'open', { dir, create: true, regions: 4, regionSize });
    await ok(adapter, 'write', { region: 1, data: b64('B0') });
    await ok(adapter, 'startCycle');
    const writeIo = (await ok(adapter, 'write', { region: 2, data: b64('C1') })).io;
    assert.ok(writeIo >= 3);
    await ok(adapter, 'failpoint', { crashAfterIo: writeIo - 1, mode: 'power', seed: 7, torn: true });
    assert.deepEqual(await adapter.crashes('write', { region: 1, data: b64('B1') }), {
      code: failpointExitCode,
      signal: null,
    });
    assert.match(adapter.stderr, /power crash/);

    adapter = new RawAdapter();
    assert.equal((await ok(adapter, 'open', { dir, create: false })).phase, 'replicating');
    const state = await ok(adapter, 'state');
    assert.equal(state.current, '0100');
    assert.equal(state.primary[2], digest(content('C1')), 'an acknowledged write survives');
    // Right before the last call (the primary's sync): the new data may be lost, never mixed within a sector here.
    assert.ok([digest(content('B0')), digest(content('B1'))].includes(state.primary[1]), state.primary[1]);
    assert.deepEqual(await adapter.end(), { code: 0, signal: null });
  });

  it('--mutant serves a broken variant; an unknown mutant is a usage error', async () => {
    const adapter = new RawAdapter(['--mutant', 'no-cow']);
    assert.match((await ok(adapter, 'hello')).name, /no-cow/);
    await ok(adapter, 'open', { dir: freshDir(), create: true, regions: 2, regionSize });
    await ok(adapter, 'startCycle');
    await ok(adapter, 'write', { region: 0, data: b64('A1') });
    assert.equal((await ok(adapter, 'state')).cow, '00', 'the mutant preserves nothing');
    assert.deepEqual(await adapter.end(), { code: 0, signal: null });

    const unknown = new RawAdapter(['--mutant', 'no-such-thing']);
    assert.equal((await unknown.exited).code, 2);
    assert.match(unknown.stderr, /no mutant named 'no-such-thing'.*no-cow/s);
  });
});
