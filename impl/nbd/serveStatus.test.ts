// The serve status file: written and read back, the lag, what reads as no status.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  lagSeconds,
  processIsAlive,
  readServeStatus,
  removeServeStatus,
  type ServeStatus,
  serveStatusPath,
  writeServeStatus,
} from './serveStatus.ts';

function sampleStatus(overrides: Partial<ServeStatus> = {}): ServeStatus {
  return {
    pid: process.pid,
    updatedAt: '2026-01-01T00:00:10.000Z',
    listening: '127.0.0.1:10809',
    connections: 2,
    bufferedBytes: 4096,
    cycle: 7,
    phase: 'replicating',
    cycleRunning: true,
    regionsLeft: 3,
    nextRegions: 5,
    cyclesCompleted: 6,
    lastCompletedCycle: 6,
    lastCompletedSwapAt: '2026-01-01T00:00:00.000Z',
    lastCycleSeconds: 0.25,
    failure: null,
    link: {
      url: 'nbd://127.0.0.1:10810/',
      state: 'down',
      lastError: 'E_IO: connect: ECONNREFUSED',
      lastErrorAtMs: 1767225605000,
      failedAttempts: 2,
      far: { completedCycle: 6, swapTimeMs: 1767225600000 },
    },
    retry: {
      paused: true,
      failedAttempts: 2,
      lastError: 'E_IO: connect: ECONNREFUSED',
      lastErrorAtMs: 1767225605000,
      downSinceMs: 1767225604000,
      nextRetryAtMs: 1767225606000,
      faultsTotal: 3,
      resends: 1,
      regionsResent: 4,
    },
    ...overrides,
  };
}

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'cowmap-serve-status-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a written status reads back the same, and a rewrite leaves no temporary file', () => {
  withDir((dir) => {
    writeServeStatus(dir, sampleStatus());
    writeServeStatus(dir, sampleStatus({ cycle: 8, regionsLeft: 0 }));
    assert.deepEqual(readServeStatus(dir), sampleStatus({ cycle: 8, regionsLeft: 0 }));
    assert.deepEqual(readdirSync(dir), ['serve.status']);
    removeServeStatus(dir);
    assert.equal(existsSync(serveStatusPath(dir)), false);
    removeServeStatus(dir);
  });
});

test('a missing, empty, cut-short or foreign file reads as no status', () => {
  withDir((dir) => {
    assert.equal(readServeStatus(dir), null);
    const full = JSON.stringify(sampleStatus());
    const bad = ['', full.slice(0, full.length / 2), '[]', JSON.stringify({ ...sampleStatus(), phase: 'busy' })];
    bad.push(JSON.stringify({ ...sampleStatus(), pid: 0 }), JSON.stringify({ ...sampleStatus(), cycle: '7' }));
    const { failure: _failure, ...withoutFailure } = sampleStatus();
    bad.push(JSON.stringify(withoutFailure));
    // The link and the retries are checked field by field too.
    const { retry: _retry, ...withoutRetry } = sampleStatus();
    bad.push(JSON.stringify(withoutRetry), JSON.stringify({ ...sampleStatus(), link: [] }));
    const link = sampleStatus().link!;
    bad.push(JSON.stringify({ ...sampleStatus(), link: { ...link, state: 'sideways' } }));
    bad.push(JSON.stringify({ ...sampleStatus(), link: { ...link, far: { completedCycle: '6', swapTimeMs: 0 } } }));
    bad.push(JSON.stringify({ ...sampleStatus(), retry: { ...sampleStatus().retry, paused: 'yes' } }));
    for (const text of bad) {
      writeFileSync(serveStatusPath(dir), text);
      assert.equal(readServeStatus(dir), null, text);
    }
  });
});

test('a directory secondary has no link; a link that never reached the far side has no far block', () => {
  withDir((dir) => {
    writeServeStatus(dir, sampleStatus({ link: null }));
    assert.equal(readServeStatus(dir)?.link, null);
    const link = { ...sampleStatus().link!, state: 'idle' as const, far: null, lastError: null, lastErrorAtMs: null };
    writeServeStatus(dir, sampleStatus({ link }));
    assert.deepEqual(readServeStatus(dir)?.link, link);
  });
});

test('the lag is the age of the last completed swap, null before the first', () => {
  const status = sampleStatus();
  assert.equal(lagSeconds(status, new Date('2026-01-01T00:00:12.300Z')), 12.3);
  assert.equal(lagSeconds(sampleStatus({ lastCompletedSwapAt: null }), new Date()), null);
});

test('a dead process is not alive, this one is', () => {
  const child = spawnSync(process.execPath, ['-e', '0']);
  assert.equal(child.status, 0);
  assert.equal(processIsAlive(process.pid), true);
  // The child has exited and been reaped: its pid is free (reuse within this test is very unlikely).
  assert.equal(processIsAlive(child.pid ?? 0x3fffffff), false);
});
