// removeStaleSocket: a socket nobody listens on is removed, a live one and a plain file are kept.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { removeStaleSocket } from './staleSocket.ts';

describe('removeStaleSocket', () => {
  it('removes a socket file whose listener died, keeps a live one, a plain file and a missing path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cowmap-stale-'));
    try {
      // A listener killed with SIGKILL leaves its socket file: a child that listens, then dies.
      const stale = join(dir, 'stale.sock');
      const script = `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`;
      spawnSync(process.execPath, ['-e', script]);
      assert.ok(existsSync(stale), 'the killed listener left its socket file');
      assert.equal(await removeStaleSocket(stale), true);
      assert.equal(existsSync(stale), false);

      const live = join(dir, 'live.sock');
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(live, resolve));
      try {
        assert.equal(await removeStaleSocket(live), false);
        assert.ok(existsSync(live));
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }

      const plain = join(dir, 'plain');
      writeFileSync(plain, 'not a socket');
      assert.equal(await removeStaleSocket(plain), false);
      assert.ok(existsSync(plain));
      assert.equal(await removeStaleSocket(join(dir, 'missing')), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
