// A child process for impl/lock.test.ts, run with `node --import tsx`:
//   hold DIR...   takes the exclusive lock of each DIR, says {held: n}, then waits to be killed;
//   contend       on {dir, at}: waits until the clock reads `at`, tries the exclusive lock
//                 of dir, says {dir, held}; keeps it until {release: dir}, then says {released: dir}.

import { NodeStorage } from './nodeStorage.ts';
import type { Lock } from './storage.ts';

const storage = new NodeStorage();
const send = (message: unknown): void => {
  process.send!(message);
};

const [mode, ...dirs] = process.argv.slice(2);
if (mode === 'hold') {
  const locks = dirs.map((dir) => storage.lock(dir));
  send({ held: locks.filter((lock) => lock !== null).length });
  setInterval(() => {}, 1 << 30);
} else if (mode === 'contend') {
  const held = new Map<string, Lock>();
  process.on('message', (message: { dir?: string; at?: number; release?: string }) => {
    if (message.release !== undefined) {
      held.get(message.release)?.release();
      held.delete(message.release);
      send({ released: message.release });
      return;
    }
    const dir = message.dir!;
    // Spin to the agreed instant, so that every contender tries at once.
    while (Date.now() < message.at!) {}
    const lock = storage.lock(dir);
    if (lock !== null) held.set(dir, lock);
    send({ dir, held: lock !== null });
  });
  process.on('disconnect', () => process.exit(0));
  send({ ready: true });
} else {
  throw new Error(`lockChild: unknown mode ${mode}`);
}
