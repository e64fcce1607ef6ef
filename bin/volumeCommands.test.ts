// The volume's commands end to end (bin/commands/init, write, read, cycle, status),
// run as a user runs them: output, exit statuses, errors as "CODE: message".

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { makeTemporaryDir, removeTree } from '../impl/nodeStorage.ts';

const cowmap = join(dirname(fileURLToPath(import.meta.url)), 'cowmap.js');
let root: string;

before(() => {
  root = makeTemporaryDir('cowmap-cli-');
});
after(() => removeTree(root));

function run(args: string[], input?: string): { status: number | null; stdout: Buffer; stderr: string } {
  const result = spawnSync(process.execPath, [cowmap, ...args], { cwd: root, input: input ?? '' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.toString('utf8') };
}

test('init, write, status, cycle, read: a label reaches the secondary', () => {
  let result = run(['init', 'vol', '--regions', '4', '--region-size', '512']);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout.toString(), /created vol: 4 regions of 512 bytes/);

  result = run(['write', 'vol', '--region', '1', '--label', 'B2']);
  assert.equal(result.status, 0, result.stderr);

  result = run(['status', 'vol']);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout.toString(), /phase +idle/);
  assert.match(result.stdout.toString(), /next +0100 +1 dirty \(X\)/);

  result = run(['cycle', 'vol']);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout.toString(), /sent 1 region\(s\), 512 bytes/);
  assert.equal(result.stderr, '', 'no progress bar when stderr is not a terminal');

  result = run(['read', 'vol', '--region', '1', '--secondary']);
  assert.equal(result.status, 0, result.stderr);
  const expected = Buffer.alloc(512);
  expected.write('B2');
  assert.deepEqual(result.stdout, expected);
});

test('a byte range from standard input, read back unaligned', () => {
  assert.equal(run(['init', 'bytes', '--regions', '2', '--region-size', '512']).status, 0);
  let result = run(['write', 'bytes', '--offset', '510'], 'hello');
  assert.equal(result.status, 0, result.stderr);
  result = run(['read', 'bytes', '--offset', '509', '--length', '7']);
  assert.deepEqual(result.stdout, Buffer.from('\0hello\0'));
  assert.match(run(['status', 'bytes']).stdout.toString(), /next +11 +2 dirty/);
});

test('errors: CowmapError exits 1 with CODE: message, bad usage exits 2', () => {
  assert.equal(run(['init', 'err', '--regions', '2', '--region-size', '512']).status, 0);
  let result = run(['init', 'err', '--regions', '2', '--region-size', '512']);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /^E_EXISTS: /);
  result = run(['init', 'bad', '--regions', '2', '--region-size', '100']);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /^E_SIZE: /);
  result = run(['read', 'err', '--region', '2']);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /^E_RANGE: read\(region 2\) while idle/);
  result = run(['read', 'missing', '--region', '0']);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /^E_NOT_FOUND: /);
  result = run(['write', 'err', '--region', '0']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /usage: cowmap write/);
  result = run(['init', 'err', '--regions', 'many', '--region-size', '512']);
  assert.equal(result.status, 2);
});
