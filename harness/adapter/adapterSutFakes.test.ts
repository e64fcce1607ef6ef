// AdapterSut on small fakes (a few lines of JavaScript or shell each): the
// protocol violations of broken SUTs, each a ProtocolError with a clear message;
// the failures a user can act on; the transcript, the temporary directories,
// keepProcess and the standbys. The real implementations are in
// harness/adapterSut.test.ts.

import '../noChildCoverage.ts'; // first: the processes it starts write no coverage files
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, it } from 'node:test';
import type { SutReply } from '../sut/systemUnderTest.ts';
import { AdapterSut } from './adapterSut.ts';
import type { Transcript } from './adapterSutOptions.ts';
import { ProtocolError } from './protocolError.ts';
import { removeTemporaryDirs, temporaryDirRemovalsSettled } from './temporaryDirs.ts';

const geometry = { regions: 4, regionSize: 512 };

function assertOk(reply: SutReply, what: string): void {
  assert.equal(reply.ok, true, `${what}: ${reply.ok ? '' : `${reply.code}: ${reply.message}`}`);
}

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
