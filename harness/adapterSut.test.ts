// AdapterSut, the suite's end of the adapter protocol, against both
// implementations we have: `cowmap adapter` (the reference, with power-loss and
// torn) and the Python example (failpoint only). FIG. 4 with the state digests,
// every op, crashes between requests and inside a write, the harness replay, and
// the protocol violations of broken SUTs, each a ProtocolError with a clear message.

import './noChildCoverage.ts'; // first: the adapters and cowmap processes it starts write no coverage files
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AdapterSut } from './adapter/adapterSut.ts';
import type { Transcript } from './adapter/adapterSutOptions.ts';
import { ProtocolError } from './adapter/protocolError.ts';
import { removeTemporaryDirs, temporaryDirRemovalsSettled } from './adapter/temporaryDirs.ts';
import { formatFailure, replayTrace } from './replay.ts';
import type { SutReply, SutState } from './sut.ts';
import { readTrace } from './trace/reader.ts';

const bin = fileURLToPath(new URL('../bin/cowmap.js', import.meta.url));
const pythonAdapter = fileURLToPath(new URL('../examples/python-adapter/adapter.py', import.meta.url));
const tracePath = (name: string): string => fileURLToPath(new URL(`../traces/${name}`, import.meta.url));

const regionSize = 512;
const geometry = { regions: 4, regionSize };

function content(label: string): Uint8Array {
  const bytes = new Uint8Array(regionSize);
  bytes.set(new TextEncoder().encode(label));
  return bytes;
}

function digest(labelOrZero: string | null): string {
  return createHash('sha256')
    .update(labelOrZero === null ? new Uint8Array(regionSize) : content(labelOrZero))
    .digest('hex');
}

/** An expected state, with labels (null: all zero) instead of digests. */
function expected(
  phase: SutState['phase'],
  current: string,
  next: string,
  primary: (string | null)[],
  secondary: (string | null)[],
  cow: (string | null)[],
): SutState {
  return {
    phase,
    current,
    next,
    cow: cow.map((label) => (label === null ? '0' : '1')).join(''),
    primary: primary.map(digest),
    secondary: secondary.map(digest),
    cowData: cow.map((label) => (label === null ? null : digest(label))),
  };
}

function assertOk(reply: SutReply, what: string): void {
  assert.equal(reply.ok, true, `${what}: ${reply.ok ? '' : `${reply.code}: ${reply.message}`}`);
}

function assertCode(reply: SutReply, code: string, what: string): void {
  assert.equal(reply.ok ? 'ok' : reply.code, code, what);
}

function replayFile(name: string, sut: AdapterSut) {
  return replayTrace(readTrace(readFileSync(tracePath(name), 'utf8'), name), sut);
}

const implementations = [
  {
    label: 'cowmap adapter (reference)',
    command: [process.execPath, bin, 'adapter'],
    features: ['failpoint', 'power-loss', 'torn'],
  },
  { label: 'the Python example', command: ['python3', pythonAdapter], features: ['failpoint'] },
];

/**
 * The tests over real implementations start no standby: each would be one more
 * start-up of the implementation (about 1.5 s of CPU for `cowmap adapter`), and
 * those left unused at the end are wasted. The standbys have their own test below.
 */
const noStandby = { standbyCount: 0 } as const;

// The two implementations side by side (each waits on its processes most of the
// time); the tests over one run one after the other.
describe('AdapterSut over the implementations we have', { concurrency: 2 }, () => {
  for (const implementation of implementations) {
    describe(`AdapterSut over ${implementation.label}`, { concurrency: 1 }, () => {
      const power = implementation.features.includes('power-loss');

      it('runs FIG. 4 with the state digests at T0..T3, every op and the rejections; a kill between requests loses only the sent set', async () => {
        const sut = new AdapterSut(implementation.command, noStandby);
        try {
          await sut.start();
          assert.deepEqual([...sut.features].sort(), [...implementation.features].sort());
          await sut.create(geometry);
          const dir = sut.volumeDir!;
          assert.ok(existsSync(dir));
          const write = async (region: number, label: string): Promise<void> =>
            assertOk(await sut.apply({ type: 'write', region, data: content(label) }), `write ${label}`);
          const transfer = async (region: number): Promise<void> =>
            assertOk(await sut.apply({ type: 'transfer', region }), `transfer ${region}`);
          const op = (type: 'startCycle' | 'completeCycle') => sut.apply({ type });

          for (const [region, label] of ['A0', 'B0', 'C0', 'D0'].entries()) await write(region, label);
          assertOk(await op('startCycle'), 'startCycle');
          for (const region of [0, 1, 2, 3]) await transfer(region);
          assertOk(await op('completeCycle'), 'completeCycle');
          assert.deepEqual(
            await sut.state(),
            expected(
              'idle',
              '0000',
              '0000',
              ['A0', 'B0', 'C0', 'D0'],
              ['A0', 'B0', 'C0', 'D0'],
              [null, null, null, null],
            ),
            'T0',
          );

          await write(0, 'A1');
          await write(1, 'B1');
          await write(3, 'D1');
          assertOk(await op('startCycle'), 'startCycle');
          await write(1, 'B2');
          for (const region of [0, 1, 3]) await transfer(region);
          assert.deepEqual(
            await sut.state(),
            expected(
              'replicating',
              '1101',
              '0100',
              ['A1', 'B2', 'C0', 'D1'],
              ['A1', 'B1', 'C0', 'D1'],
              [null, 'B1', null, null],
            ),
            'T1',
          );
          const read = await sut.apply({ type: 'read', region: 1, volume: 'primary' });
          assert.ok(read.ok && read.data !== undefined);
          assert.deepEqual(read.data, content('B2'));
          const readSecondary = await sut.apply({ type: 'read', region: 1, volume: 'secondary' });
          assert.ok(readSecondary.ok);
          assert.deepEqual(readSecondary.data, content('B1'));

          assertOk(await op('completeCycle'), 'completeCycle');
          assertOk(await op('startCycle'), 'startCycle');
          await transfer(1);
          assert.deepEqual(
            await sut.state(),
            expected(
              'replicating',
              '0100',
              '0000',
              ['A1', 'B2', 'C0', 'D1'],
              ['A1', 'B2', 'C0', 'D1'],
              [null, null, null, null],
            ),
            'T2',
          );

          await write(0, 'A0');
          await write(1, 'B0');
          await write(3, 'D0');
          const t3 = expected(
            'replicating',
            '0100',
            '1101',
            ['A0', 'B0', 'C0', 'D0'],
            ['A1', 'B2', 'C0', 'D1'],
            ['A1', 'B2', null, 'D1'],
          );
          assert.deepEqual(await sut.state(), t3, 'T3');

          // Rejections, each with a message and no durable call.
          const rejections: [SutReply, string][] = [
            [await op('startCycle'), 'E_PHASE'],
            [await sut.apply({ type: 'transfer', region: 0 }), 'E_NOT_CURRENT'],
            [await sut.apply({ type: 'transfer', region: 4 }), 'E_RANGE'],
            [await sut.apply({ type: 'write', region: 4, data: content('E0') }), 'E_RANGE'],
            [await sut.apply({ type: 'write', region: 0, data: new Uint8Array(3) }), 'E_SIZE'],
            [await sut.apply({ type: 'read', region: -1, volume: 'primary' }), 'E_RANGE'],
          ];
          for (const [reply, code] of rejections) {
            assertCode(reply, code, code);
            assert.ok(!reply.ok && reply.message.length > 0 && reply.io === 0);
          }
          assert.deepEqual(await sut.state(), t3, 'rejections change nothing');

          // A kill between requests, and a new process: exactly T3, and nothing sent.
          const pid = sut.pid;
          await sut.crash();
          assert.equal(sut.pid, undefined);
          const recovered = await sut.recover();
          assertOk(recovered, 'recover');
          assert.notEqual(sut.pid, pid);
          assert.equal(sut.volumeDir, dir);
          assert.deepEqual(await sut.state(), t3, 'T3 after the kill');
          assertCode(await op('completeCycle'), 'E_NOT_DRAINED', 'the sent set is lost with the process');
          await transfer(1);
          assertOk(await op('completeCycle'), 'completeCycle');
          assert.deepEqual(
            await sut.state(),
            expected(
              'idle',
              '0000',
              '1101',
              ['A0', 'B0', 'C0', 'D0'],
              ['A1', 'B2', 'C0', 'D1'],
              [null, null, null, null],
            ),
          );

          // create again: a fresh volume in a fresh directory, the same process.
          const samePid = sut.pid;
          await sut.create({ regions: 2, regionSize });
          assert.equal(sut.pid, samePid);
          await temporaryDirRemovalsSettled(); // removed in the background, while the new volume opens
          assert.ok(!existsSync(dir), 'the last volume directory is removed');
          assert.deepEqual(await sut.state(), expected('idle', '00', '00', [null, null], [null, null], [null, null]));
          const last = sut.volumeDir!;
          await sut.close();
          assert.ok(!existsSync(last), 'close removes the volume directory');
          assert.equal(sut.pid, undefined);
        } finally {
          sut.kill();
        }
      });

      it('crashes inside a write at a failpoint (process mode), recovers through a new process; a failpoint past the op lets it answer', async () => {
        const sut = new AdapterSut(implementation.command, noStandby);
        try {
          await sut.create(geometry);
          assertOk(await sut.apply({ type: 'write', region: 0, data: content('A0') }), 'write');
          assertOk(await sut.apply({ type: 'startCycle' }), 'startCycle');
          // The first write of region 0 in the cycle: crash after its first durable call.
          const result = await sut.applyCrashing(
            { type: 'write', region: 0, data: content('A1') },
            { afterIo: 1, mode: 'process', seed: 0, torn: false },
          );
          assert.deepEqual(result, { crashed: true });
          assert.equal(sut.pid, undefined);
          assert.match(sut.lastExit ?? '', /exited with code 86/);
          assertOk(await sut.recover(), 'recover');
          const state = await sut.state();
          assert.equal(state.phase, 'replicating');
          assert.equal(state.current, '1000');
          assert.ok([digest('A0'), digest('A1')].includes(state.primary[0]!));
          if (state.primary[0] === digest('A1'))
            assert.equal(state.cowData[0], digest('A0'), 'new data never without its COW copy');

          // A failpoint beyond the op's last call: it answers, the SUT keeps running (disarmed).
          const answered = await sut.applyCrashing(
            { type: 'write', region: 2, data: content('C1') },
            { afterIo: 1000, mode: 'process', seed: 0, torn: false },
          );
          assert.ok(!answered.crashed);
          assertOk(answered.reply, 'the write answered');
          assert.ok((answered.reply.io ?? 0) > 0);
          const after = await sut.state();
          assert.equal(after.primary[2], digest('C1'));
          await sut.crash();
          assertOk(await sut.recover(), 'recover');
          assert.deepEqual(await sut.state(), after, 'an acknowledged write survives the crash that follows it');
          // A rejected op under a failpoint makes no call: it answers.
          const rejected = await sut.applyCrashing(
            { type: 'transfer', region: 1 },
            { afterIo: 0, mode: 'process', seed: 0, torn: false },
          );
          assert.ok(!rejected.crashed);
          assertCode(rejected.reply, 'E_NOT_CURRENT', 'transfer of a clean region');
          assertOk(await sut.apply({ type: 'write', region: 3, data: content('D1') }), 'nothing fires later');
          await sut.close();
        } finally {
          sut.kill();
        }
      });

      if (power) {
        it('crashes inside a write in power and torn modes; recovery finds an allowed state', async () => {
          const sut = new AdapterSut(implementation.command, noStandby);
          try {
            await sut.create(geometry);
            assertOk(await sut.apply({ type: 'write', region: 1, data: content('B0') }), 'write');
            for (const [seed, torn] of [
              [1, false],
              [2, true],
              [3, true],
            ] as const) {
              const result = await sut.applyCrashing(
                { type: 'write', region: 1, data: content(`B${seed}`) },
                { afterIo: 1, mode: 'power', seed, torn },
              );
              assert.deepEqual(result, { crashed: true });
              assertOk(await sut.recover(), 'recover');
              const state = await sut.state();
              assert.equal(state.phase, 'idle');
              assert.equal(state.next, '0100');
            }
            await sut.close();
          } finally {
            sut.kill();
          }
        });
      } else {
        it('refuses a power-loss failpoint it does not offer, with a plain Error (not a protocol error)', async () => {
          const sut = new AdapterSut(implementation.command, noStandby);
          try {
            await sut.create(geometry);
            await assert.rejects(
              sut.applyCrashing({ type: 'startCycle' }, { afterIo: 1, mode: 'power', seed: 0, torn: false }),
              (error: Error) => !(error instanceof ProtocolError) && /power-loss/.test(error.message),
            );
            assertOk(await sut.apply({ type: 'startCycle' }), 'still running');
            await sut.close();
          } finally {
            sut.kill();
          }
        });
      }

      it('passes the harness replay of FIG. 4 and of crash traces', async () => {
        const traces = [
          'fig4.jsonl',
          'scenarios/crash-between-ops-replicating-resends.jsonl',
          'scenarios/crash-inside-first-write-in-cycle.jsonl',
        ];
        if (power) traces.push('scenarios/crash-inside-write-torn.jsonl');
        // One SUT for every trace, as conform runs them: each replay closes its volume
        // and the process goes on to the next (only a crash starts a new one).
        const sut = new AdapterSut(implementation.command, { ...noStandby, keepProcess: true });
        try {
          for (const trace of traces) {
            const result = await replayFile(trace, sut);
            assert.equal(
              result.failure,
              null,
              `${trace}: ${result.failure === null ? '' : formatFailure(result.failure)}`,
            );
            assert.ok(result.stats.steps > 0, trace);
            assert.equal(sut.volumeDir, null, `${trace}: replay closes the SUT`);
          }
          await sut.end();
        } finally {
          sut.kill();
        }
      });
    });
  }
});

describe('AdapterSut finds a broken implementation', () => {
  it('replay of FIG. 4 on `cowmap adapter --mutant no-cow` fails at T1 (the COW copy is missing)', async () => {
    const sut = new AdapterSut([process.execPath, bin, 'adapter', '--mutant', 'no-cow']);
    const result = await replayFile('fig4.jsonl', sut);
    assert.ok(result.failure !== null);
    assert.equal(result.failure.observedBy, 'implementation');
    assert.match(formatFailure(result.failure), /cow/);
  });
});

// A small SUT in JavaScript that speaks the protocol well except where `behavior` says.
const fakeSut = `
const behavior = process.argv[1];
let buffered = '';
const send = (value) => process.stdout.write((typeof value === 'string' ? value : JSON.stringify(value)) + '\\n');
process.stdin.on('data', (chunk) => {
  buffered += chunk;
  let newline;
  while ((newline = buffered.indexOf('\\n')) >= 0) {
    const line = buffered.slice(0, newline);
    buffered = buffered.slice(newline + 1);
    const request = JSON.parse(line);
    const ok = (fields) => send({ id: request.id, ok: true, ...fields, io: 0 });
    const refuse = () => send({ id: request.id, ok: false, error: { code: 'E_IO', message: 'fake: everything fails' }, io: 0 });
    if (behavior === 'all-errors' || (behavior === 'errors-after-hello' && request.op !== 'hello')) {
      refuse();
    } else if (behavior === 'no-reopen' && request.op === 'open' && request.create === false) {
      process.stderr.write('fake: cannot read my own files\\n');
      process.exit(1);
    } else if (request.op === 'hello') {
      const hello = { protocol: 1, name: 'fake', version: '0', features: [] };
      if (behavior === 'wrong-id') send({ id: request.id + 1, ok: true, ...hello });
      else if (behavior === 'protocol-2') ok({ ...hello, protocol: 2 });
      else if (behavior === 'no-ok') send({ id: request.id, ...hello });
      else if (behavior === 'long-line') ok({ ...hello, name: 'x'.repeat(5000) });
      else if (behavior === 'answers-twice') { ok(hello); ok(hello); }
      else ok(hello);
    } else if (request.op === 'open') {
      ok({ phase: 'idle' });
    } else if (request.op === 'close') {
      ok({});
    } else if (behavior === 'dies') {
      process.stderr.write('fake: segmentation fault (pretend)\\n');
      process.exit(139);
    } else if (behavior === 'bad-error') {
      send({ id: request.id, ok: false, io: 0 });
    } else if (behavior === 'bad-state') {
      ok({ phase: 'idle', current: '01', next: '0000', cow: '0000', primary: ['x'], secondary: [], cowData: [] });
    } else if (behavior === 'garbage-later') {
      send('Segmentation fault');
    } else {
      ok({});
    }
  }
});
`;

function fake(behavior: string): string[] {
  return [process.execPath, '-e', fakeSut, behavior];
}

async function protocolFailure(
  sut: AdapterSut,
  action: (sut: AdapterSut) => Promise<unknown>,
  pattern: RegExp,
): Promise<ProtocolError> {
  let caught: unknown = null;
  try {
    await action(sut);
  } catch (error) {
    caught = error;
  } finally {
    await sut.close().catch(() => undefined);
    sut.kill();
  }
  assert.ok(caught instanceof ProtocolError, `expected a ProtocolError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  assert.equal(sut.volumeDir, null, 'close still removes the volume directory');
  return caught;
}

// The cases over fakes run side by side: each is a small process, mostly waited on.
describe('AdapterSut protocol violations', { concurrency: true }, () => {
  it('a SUT that prints garbage', async () => {
    const error = await protocolFailure(
      new AdapterSut([process.execPath, '-e', "console.log('hello there')"]),
      (sut) => sut.start(),
      /printed a line that is not JSON where the answer to request 1 \(hello\) was due: "hello there"/,
    );
    assert.equal(error.name, 'ProtocolError');
  });

  it('a SUT that exits at start, with its standard error in the message', async () => {
    await protocolFailure(
      new AdapterSut([process.execPath, '-e', 'process.exit(3)']),
      (sut) => sut.create(geometry),
      /exited with code 3 at start, before answering hello \(its standard error was empty\)/,
    );
    const error = await protocolFailure(
      new AdapterSut([process.execPath, '-e', "process.stderr.write('fake: no config file\\n'); process.exit(3)"]),
      (sut) => sut.start(),
      /exited with code 3 at start/,
    );
    assert.match(error.message, /standard error[^\n]*\n[\s\S]*fake: no config file/);
    assert.match(error.stderr, /no config file/);
  });

  it('a command that cannot be started', async () => {
    await protocolFailure(
      new AdapterSut(['/nonexistent/cowmap-sut']),
      (sut) => sut.start(),
      /could not be started: .*ENOENT/,
    );
  });

  it('a SUT that answers with a wrong id, without ok, or with another protocol version', async () => {
    await protocolFailure(
      new AdapterSut(fake('wrong-id')),
      (sut) => sut.start(),
      /answered request \d+ \(hello\) with id \d+/,
    );
    await protocolFailure(new AdapterSut(fake('no-ok')), (sut) => sut.start(), /without a boolean "ok"/);
    await protocolFailure(new AdapterSut(fake('protocol-2')), (sut) => sut.start(), /speaks adapter protocol 2, not 1/);
  });

  it('a SUT that answers ok: false without an error, a malformed state, garbage later, or answers twice', async () => {
    await protocolFailure(
      new AdapterSut(fake('bad-error')),
      async (sut) => {
        await sut.create(geometry);
        await sut.apply({ type: 'startCycle' });
      },
      /with ok: false but without an error/,
    );
    await protocolFailure(
      new AdapterSut(fake('bad-state')),
      async (sut) => {
        await sut.create(geometry);
        await sut.state();
      },
      /malformed state: current must be a string of 4 bits.*primary must be a list of 4/,
    );
    await protocolFailure(
      new AdapterSut(fake('garbage-later')),
      async (sut) => {
        await sut.create(geometry);
        await sut.apply({ type: 'transfer', region: 0 });
      },
      /not JSON where the answer to request \d+ \(transfer\) was due: "Segmentation fault"/,
    );
    // The second answer to hello is caught as it arrives, or, when it comes late,
    // as the answer to the next request.
    await protocolFailure(
      new AdapterSut(fake('answers-twice')),
      async (sut) => {
        await sut.create(geometry);
      },
      /printed a line that answers no request|answered request \d+ \(open\) with id 1:/,
    );
  });

  it('a SUT that dies outside a failpoint, one that hangs, and a line over the bound', async () => {
    const died = await protocolFailure(
      new AdapterSut(fake('dies')),
      async (sut) => {
        await sut.create(geometry);
        await sut.apply({ type: 'startCycle' });
      },
      /exited with code 139 without answering request \d+ \(startCycle\), outside a failpoint/,
    );
    assert.match(died.message, /segmentation fault \(pretend\)/);
    // It answers hello, then hangs on open. A shell starts in milliseconds, so the
    // timeout (which hello has too) is met by hello however loaded the machine is.
    const hello = JSON.stringify({ id: 1, ok: true, protocol: 1, name: 'fake', version: '0', features: [] });
    const silent = `read -r line; echo '${hello}'; read -r line; echo 'fake: thinking forever' >&2; exec sleep 600`;
    const hung = await protocolFailure(
      new AdapterSut(['sh', '-c', silent], { requestTimeoutMs: 2000 }),
      (sut) => sut.create(geometry),
      /no answer to request 2 \(open\) within 2000 ms/,
    );
    assert.match(hung.message, /thinking forever/);
    await protocolFailure(
      new AdapterSut(fake('long-line'), { maxLineBytes: 1024 }),
      (sut) => sut.start(),
      /printed a line longer than 1024 bytes/,
    );
  });
});

describe('AdapterSut failures a user can act on', { concurrency: true }, () => {
  it('a SUT that answers every request with an error, or every request after hello: a ProtocolError that says so', async () => {
    await protocolFailure(
      new AdapterSut(fake('all-errors')),
      (sut) => sut.create(geometry),
      /answered hello with an error: E_IO: fake: everything fails/,
    );
    await protocolFailure(
      new AdapterSut(fake('errors-after-hello')),
      (sut) => sut.create(geometry),
      /could not create a volume of 4 x 512 bytes in .*: open \{create: true\} answered E_IO: fake: everything fails/,
    );
    await protocolFailure(
      new AdapterSut(fake('errors-after-hello')),
      async (sut) => {
        await sut.start();
        await sut.state();
      },
      /answered state with an error: E_IO/,
    );
  });

  it('a SUT that cannot reopen after a kill gives a failing reply, not a ProtocolError', async () => {
    const sut = new AdapterSut(fake('no-reopen'));
    try {
      await sut.create(geometry);
      await sut.crash();
      const reply = await sut.recover();
      assert.equal(reply.ok, false);
      assert.match(
        reply.ok ? '' : reply.message,
        /reopen after the crash: [\s\S]*exited with code 1[\s\S]*cannot read my own files/,
      );
    } finally {
      await sut.close().catch(() => undefined);
      sut.kill();
    }
  });
});

describe('AdapterSut transcript, temporary directories, one process for every run', () => {
  it('the transcript has every line sent and received, and the process notes', async () => {
    const lines: [string, string][] = [];
    const transcript: Transcript = (direction, line) => lines.push([direction, line]);
    const sut = new AdapterSut(fake('ok'), { transcript });
    try {
      await sut.create(geometry);
      await sut.apply({ type: 'transfer', region: 3 });
      await sut.crash();
    } finally {
      await sut.close();
    }
    const requests = lines
      .filter(([direction]) => direction === 'request')
      .map(([, line]) => JSON.parse(line) as { op: string });
    const responses = lines
      .filter(([direction]) => direction === 'response')
      .map(([, line]) => JSON.parse(line) as { ok: boolean });
    assert.deepEqual(
      requests.map((request) => request.op),
      ['hello', 'open', 'transfer'],
    );
    assert.equal(responses.length, 3);
    assert.ok(responses.every((response) => response.ok));
    const notes = lines.filter(([direction]) => direction === 'note').map(([, line]) => line);
    assert.match(notes[0]!, /^started pid \d+: /);
    assert.ok(
      notes.some((note) => /^killed pid \d+/.test(note)),
      notes.join('; '),
    );
  });

  it('removeTemporaryDirs removes the volume directory of a SUT that was never closed', async () => {
    const sut = new AdapterSut(fake('ok'));
    try {
      await sut.create(geometry);
      // The fake makes no volume: its temporary root is there all the same.
      const dir = dirname(sut.volumeDir!);
      assert.ok(existsSync(dir));
      removeTemporaryDirs();
      assert.equal(existsSync(dir), false);
    } finally {
      sut.kill();
    }
  });

  it('keepProcess: close() ends the volume, the next create runs on the same process; end() ends it', async () => {
    // The fake makes no volume: what close removes is the temporary root it was given.
    const sut = new AdapterSut(fake('ok'), { keepProcess: true });
    try {
      await sut.create(geometry);
      const pid = sut.pid;
      const first = sut.volumeDir!;
      assert.ok(existsSync(dirname(first)));
      await sut.close();
      // The removal runs in the background, overlapping the next run; it is tracked until done.
      await temporaryDirRemovalsSettled();
      assert.equal(existsSync(dirname(first)), false, 'close removes the volume directory');
      assert.equal(sut.pid, pid, 'close keeps the process');
      await sut.create(geometry);
      assert.equal(sut.pid, pid, 'the next create runs on the same process');
      assert.notEqual(sut.volumeDir, first);
      await sut.end();
      assert.equal(sut.pid, undefined);
    } finally {
      sut.kill();
    }
  });

  it('after a crash, standby processes are started ahead; recover takes one; end() ends them all', async () => {
    const started: number[] = [];
    const sut = new AdapterSut(fake('ok'), {
      standbyCount: 2,
      transcript: (direction, line) => {
        const match = direction === 'note' ? /^started pid (\d+)/.exec(line) : null;
        if (match !== null) started.push(Number(match[1]));
      },
    });
    try {
      await sut.create(geometry);
      for (let crash = 0; crash < 3; crash++) {
        const before = sut.pid;
        await sut.crash();
        assertOk(await sut.recover(), 'recover');
        assert.notEqual(sut.pid, before);
      }
      // The first process; the first recover starts its own and two standbys; each later recover takes one and starts one.
      assert.equal(started.length, 1 + 3 + 1 + 1, `started ${started.join(', ')}`);
    } finally {
      await sut.end();
    }
    for (const pid of started) {
      assert.throws(() => process.kill(pid, 0), /ESRCH/, `pid ${pid} is still running after end()`);
    }
  });
});
