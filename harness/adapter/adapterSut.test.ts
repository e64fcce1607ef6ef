// AdapterSut, the suite's end of the adapter protocol, against both
// implementations we have: `cowmap adapter` (the reference, with power-loss and
// torn) and the Python example (failpoint only). FIG. 4 with the state digests,
// every op, crashes between requests and inside a write, and the harness replay.
// The protocol violations of broken SUTs, the transcript, the temporary
// directories and the standbys are shown on fakes (adapter/adapterSutFakes.test.ts).

import '../noChildCoverage.ts'; // first: the adapters and cowmap processes it starts write no coverage files
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AdapterSut } from './adapterSut.ts';
import { ProtocolError } from './protocolError.ts';
import { temporaryDirRemovalsSettled } from './temporaryDirs.ts';
import { formatFailure, replayTrace } from '../replay.ts';
import type { SutReply, SutState } from '../sut/systemUnderTest.ts';
import { readTrace } from '../trace/reader.ts';

const bin = fileURLToPath(new URL('../../bin/cowmap.js', import.meta.url));
const pythonAdapter = fileURLToPath(new URL('../../examples/python-adapter/adapter.py', import.meta.url));
const tracePath = (name: string): string => fileURLToPath(new URL(`../../traces/${name}`, import.meta.url));

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
    features: ['failpoint', 'power-loss', 'torn', 'consistent'],
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
