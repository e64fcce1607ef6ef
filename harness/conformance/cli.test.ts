// `cowmap conform` as a user meets it: a broken adapter gets a clear message,
// exit 2 and its reports; an interrupted run leaves no temporary directory and
// writes a partial report; nothing prints a stack trace.

import '../noChildCoverage.ts'; // first: the adapters and cowmap processes it starts write no coverage files
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { XMLValidator } from 'fast-xml-parser';

const bin = fileURLToPath(new URL('../../bin/cowmap.js', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'cowmap-conform-cli-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface Outcome {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cowmap conform ARGS`, with its own temporary folder; `onStarted` may signal it. */
function conform(
  args: readonly string[],
  tempDir: string,
  onStarted?: (pid: number, stdout: () => string) => void,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, 'conform', ...args], {
      env: { ...process.env, TMPDIR: tempDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    onStarted?.(child.pid!, () => stdout + stderr);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** An adapter in one line of JavaScript: answers every request with `answer(id)`. */
function fakeAdapter(answer: string): string[] {
  const script =
    `require('readline').createInterface({ input: process.stdin }).on('line', (line) => { let id = null; ` +
    `try { id = JSON.parse(line).id; } catch {} process.stdout.write(JSON.stringify(${answer}) + '\\n'); ` +
    `});`;
  return [process.execPath, '-e', script];
}

function assertNoStackTrace(outcome: Outcome): void {
  assert.doesNotMatch(outcome.stderr + outcome.stdout, /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace');
}

describe('conform, as a user meets it', () => {
  it('an adapter that answers nonsense: a clear message, exit 2, and both reports with the error', async () => {
    const dir = mkdtempSync(join(scratch, 'nonsense-'));
    const report = join(dir, 'report.json');
    const junit = join(dir, 'junit.xml');
    const outcome = await conform(
      [
        '--seed',
        '1',
        '--report',
        report,
        '--junit',
        junit,
        '--out-dir',
        dir,
        '--',
        ...fakeAdapter(`'\\u0007 nonsense'`),
      ],
      dir,
    );
    assert.equal(outcome.status, 2, outcome.stdout + outcome.stderr);
    assertNoStackTrace(outcome);
    assert.match(outcome.stdout, /E_BAD_REQUEST: the implementation broke adapter protocol 1/);
    const json = JSON.parse(readFileSync(report, 'utf8'));
    assert.equal(json.error.code, 'E_BAD_REQUEST');
    assert.equal(json.conforms, false);
    const xml = readFileSync(junit, 'utf8');
    assert.equal(XMLValidator.validate(xml), true);
    assert.match(xml, /<error message="E_BAD_REQUEST/);
  });

  it('an adapter that answers every request with an error: exit 2, no stack trace', async () => {
    const dir = mkdtempSync(join(scratch, 'errors-'));
    const outcome = await conform(
      [
        '--seed',
        '1',
        '--out-dir',
        dir,
        '--',
        ...fakeAdapter(`{ id, ok: false, error: { code: 'E_IO', message: 'no' } }`),
      ],
      dir,
    );
    assert.equal(outcome.status, 2, outcome.stdout + outcome.stderr);
    assertNoStackTrace(outcome);
    assert.match(outcome.stdout, /hello/);
  });

  it('bad usage: exit 2 with the reason', async () => {
    const dir = mkdtempSync(join(scratch, 'usage-'));
    for (const args of [
      ['--check', 'nonsense'],
      ['--level', 'rules', '--up-to', 'crash'],
      ['--path', '1:2', '--seed', '1'],
      ['--regions', '3'],
    ]) {
      const outcome = await conform([...args, '--', 'true'], dir);
      assert.equal(outcome.status, 2, args.join(' '));
      // The one format of a usage error (bin/failure.ts): "cowmap conform: problem", then the usage line.
      assert.match(outcome.stderr, /^cowmap conform: .+\nusage: cowmap conform /, args.join(' '));
    }
  });

  it('SIGTERM: exit 143, a partial report marked interrupted, no temporary directory left', async () => {
    const dir = mkdtempSync(join(scratch, 'term-'));
    const report = join(dir, 'report.json');
    const outcome = await conform(
      [
        '--seed',
        '1',
        '--time-budget',
        '120',
        '--report',
        report,
        '--out-dir',
        join(dir, 'failures'),
        '--',
        process.execPath,
        bin,
        'adapter',
      ],
      dir,
      (pid, output) => {
        // Once the run is under way (the progress line or the first check), stop it.
        const poll = setInterval(() => {
          if (/seed: 1/.test(output())) {
            clearInterval(poll);
            setTimeout(() => process.kill(pid, 'SIGTERM'), 3000);
          }
        }, 100);
      },
    );
    assert.equal(outcome.status, 143, outcome.stdout + outcome.stderr);
    assertNoStackTrace(outcome);
    const json = JSON.parse(readFileSync(report, 'utf8'));
    assert.equal(json.interrupted, true);
    assert.equal(json.conforms, false);
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.startsWith('cowmap-adapter-')),
      [],
      'no temporary volume directory is left',
    );
  });
});
