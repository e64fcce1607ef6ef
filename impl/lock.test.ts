// The volume lock across processes (impl/nodeStorage.ts): a kernel lock that the
// kernel drops when its holder dies. What it answers: with a pid file, 7 in 100
// takeovers of a dead holder's lock by racing processes ended with two holders.
// Here 100 locks (25 at make test's quick level), each held by a process killed
// with SIGKILL, are each raced by several processes trying at the same instant:
// exactly one wins every time, and the others see the lock held.

import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { atLevel } from '../harness/testLevel.ts';
import { makeTemporaryDir, NodeStorage, removeTree } from './nodeStorage.ts';

const childPath = join(import.meta.dirname, 'lockChild.ts');
// Each trial is a dead holder and four racing processes: a kernel lock has no window
// to find, so 25 show the same as 100 at a quarter of the processes.
const trialCount = atLevel(25, 100);
const dirsPerHolder = 10;
const contenderCount = 4;
const storage = new NodeStorage();
let root: string;

before(() => {
  root = makeTemporaryDir('cowmap-lock-');
});

after(() => removeTree(root));

function startChild(args: string[]): ChildProcess {
  return fork(childPath, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** The next message from `child` that `accept` takes. */
function nextMessage<T>(child: ChildProcess, accept: (message: T) => boolean): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: T): void => {
      if (!accept(message)) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      child.off('message', onMessage);
      reject(new Error(`lock child exited (${code ?? signal}) before answering`));
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

test(`${trialCount} takeovers of a dead holder's lock by ${contenderCount} racing processes: one holder every time`, {
  timeout: 300_000,
}, async () => {
  const contenders = Array.from({ length: contenderCount }, () => startChild(['contend']));
  try {
    await Promise.all(
      contenders.map((child) => nextMessage(child, (message: { ready?: boolean }) => message.ready === true)),
    );
    let wins = 0;
    for (let first = 0; first < trialCount; first += dirsPerHolder) {
      const dirs = Array.from({ length: Math.min(dirsPerHolder, trialCount - first) }, (_, index) =>
        join(root, `v${first + index}`),
      );
      for (const dir of dirs) storage.mkdir(dir);
      const holder = startChild(['hold', ...dirs]);
      const { held } = await nextMessage(holder, (message: { held?: number }) => message.held !== undefined);
      assert.equal(held, dirs.length, 'the holder took every lock');
      for (const dir of dirs) assert.equal(storage.lock(dir), null, `${dir} is held while its holder lives`);
      const exited = once(holder, 'exit');
      holder.kill('SIGKILL');
      const [, signal] = await exited;
      assert.equal(signal, 'SIGKILL');
      for (const dir of dirs) {
        const at = Date.now() + 30;
        const answers = contenders.map((child) =>
          nextMessage(child, (message: { dir?: string }) => message.dir === dir),
        );
        for (const child of contenders) child.send({ dir, at });
        const results = (await Promise.all(answers)) as Array<{ held: boolean }>;
        const winners = results.flatMap((result, index) => (result.held ? [index] : []));
        assert.equal(winners.length, 1, `${dir}: holders ${JSON.stringify(winners)}`);
        assert.equal(storage.lock(dir), null, `${dir} is held by the winner`);
        const winner = contenders[winners[0]!]!;
        const released = nextMessage(winner, (message: { released?: string }) => message.released === dir);
        winner.send({ release: dir });
        await released;
        const relock = storage.lock(dir);
        assert.notEqual(relock, null, `${dir} is free after the winner released it`);
        relock!.release();
        wins++;
      }
    }
    assert.equal(wins, trialCount);
  } finally {
    for (const child of contenders) child.disconnect();
  }
});
