// The cowmap command line as a user runs it: exit statuses and what it prints.
// The cases are independent, so they run four at a time; the processes write no
// coverage file at their exit (model/ and impl/ code they reach is covered in
// process by the other tests, and the file cost seconds per process under c8).

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('./cowmap.js', import.meta.url));
const fig4 = fileURLToPath(new URL('../traces/fig4.jsonl', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'cowmap-cli-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

export function cowmap(
  args: string[],
  input?: string | Uint8Array,
): Promise<{ status: number | null; stdout: string; stderr: string; bytes: Buffer }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_V8_COVERAGE;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: scratch, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (data: Buffer) => out.push(data));
    child.stderr.on('data', (data: Buffer) => err.push(data));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (status) => {
      clearTimeout(timer);
      const bytes = Buffer.concat(out);
      resolve({ status, stdout: bytes.toString('latin1'), stderr: Buffer.concat(err).toString('utf8'), bytes });
    });
  });
}

describe('cowmap', { concurrency: 4 }, () => {
  it('prints its help and exits 0 without a command, and exits 2 on an unknown one', async () => {
    const bare = await cowmap([]);
    assert.equal(bare.status, 0);
    assert.match(bare.stdout, /^usage: cowmap <command>/);
    const unknown = await cowmap(['frobnicate']);
    assert.equal(unknown.status, 2);
    assert.equal(
      unknown.stderr,
      "cowmap frobnicate: unknown command 'frobnicate'\nusage: cowmap <command> [options]\nsee 'cowmap --help'\n",
    );
    const help = await cowmap(['--help']);
    assert.equal(help.status, 0);
    for (const name of ['init', 'write', 'read', 'cycle', 'status', 'scrub', 'serve'])
      assert.match(help.stdout, new RegExp(`^  ${name} `, 'm'));
    const version = await cowmap(['--version']);
    assert.equal(version.status, 0);
    assert.equal(
      version.stdout,
      `cowmap ${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`,
    );
  });

  it('conform --help prints the help built from its options and exits 0; an unknown option is exactly one usage error', async () => {
    const { description } = await import('./descriptions/conform.ts');
    const { commandHelp } = await import('./help.ts');
    const help = await cowmap(['conform', '--help', '--', 'true']);
    assert.equal(help.status, 0);
    assert.equal(help.stdout, commandHelp(description));
    const unknown = await cowmap(['conform', '--bogus', '--', 'true']);
    assert.equal(unknown.status, 2);
    assert.equal(
      unknown.stderr,
      `cowmap conform: unknown option '--bogus'\nusage: cowmap conform ${description.usage}\nsee 'cowmap conform --help'\n`,
    );
  });

  it('mutants --stages runs only the stages asked for, and exits 2 on an unknown stage', async () => {
    const run = await cowmap([
      'mutants',
      '--quick',
      '--time-budget',
      '2',
      '--only',
      'no-cow,swap-keeps-next',
      '--stages',
      'traces,crashes',
    ]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(
      run.stdout,
      /^\| mutant \| what it breaks \| traces\/ \| crash exploration \(L=3 N=2\) \| first check that fails \|$/m,
    );
    assert.match(run.stdout, /^\| no-cow \| .*caught in .*caught in /m);
    assert.match(run.stdout, /^2 caught, 0 missed/m);
    const unknown = await cowmap(['mutants', '--stages', 'fuzz,nope']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no stage 'nope'/);
  });

  it('replay --model-only passes FIG. 4 (exit 0)', async () => {
    const run = await cowmap(['replay', '--model-only', fig4]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^ok .*fig4\.jsonl on the model/);
  });

  it('replay --model-only with one expectation changed exits 1, naming the line and both states', async () => {
    const changed = readFileSync(fig4, 'utf8').replace('"next": "1101"}}', '"next": "1100"}}');
    const file = join(scratch, 'changed.jsonl');
    writeFileSync(file, changed);
    const run = await cowmap(['replay', '--model-only', file]);
    assert.equal(run.status, 1);
    assert.match(run.stdout, /changed\.jsonl:13: expect/);
    assert.match(run.stdout, /next\s+1100\s+1101/);
  });

  it('replay of an invalid trace exits 2 with E_BAD_REQUEST and the line', async () => {
    const file = join(scratch, 'invalid.jsonl');
    writeFileSync(
      file,
      readFileSync(fig4, 'utf8').replace('{"op": "completeCycle"}', '{"op": "completeCycle", "expectError": "E_WHAT"}'),
    );
    const run = await cowmap(['replay', '--model-only', file]);
    assert.equal(run.status, 2);
    assert.match(run.stderr, /invalid\.jsonl:\d+: E_BAD_REQUEST: expectError must be one of/);
    assert.equal((await cowmap(['replay', '--model-only', join(scratch, 'missing.jsonl')])).status, 2);
    assert.equal((await cowmap(['replay', '--model-only', '--bogus', fig4])).status, 2);
  });

  it('explore exits 0 and prints states, transitions, depth and seconds', async () => {
    const run = await cowmap(['explore', '--regions', '2', '--values', '2', '--crash']);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /states:\s+7528\n/);
    assert.match(run.stdout, /transitions:\s+34620\n/);
    assert.match(run.stdout, /depth:\s+\d+\n\s+seconds:\s+[\d.]+\n\s+states\/s:/);
    const bounded = await cowmap(['explore', '--regions', '2', '--values', '2', '--states-max', '10']);
    assert.equal(bounded.status, 0);
    assert.match(bounded.stdout, /stopped early: --states-max 10/);
    assert.equal((await cowmap(['explore', '--regions', 'x'])).status, 2);
  });

  it('explore --consistent models the consistent image D as a state of its own: more states, none breaks an invariant', async () => {
    // 1170 states of N=2 without D (D taken as S); with D, the old point beside the new one (docs/protocol.md section 10).
    const run = await cowmap(['explore', '--regions', '2', '--values', '2', '--consistent']);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^explored regions=2 values=2 crash=no consistent=yes\n/);
    assert.match(run.stdout, /states:\s+2106\n/);
    assert.match(run.stdout, /every invariant holds in every reachable state/);
  });

  it('diagram prints the Mermaid statechart', async () => {
    const run = await cowmap(['diagram']);
    assert.equal(run.status, 0);
    assert.match(run.stdout, /^stateDiagram-v2\n/);
    assert.match(run.stdout, /replicating_drained --> idle : completeCycle/);
  });
});
