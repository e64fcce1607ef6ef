// The cowmap command line as a user runs it: exit statuses and what it prints.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('./cowmap.js', import.meta.url));
const fig4 = fileURLToPath(new URL('../traces/fig4.jsonl', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'cowmap-cli-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

export function cowmap(args: string[], input?: string | Uint8Array) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'buffer', input, cwd: scratch, timeout: 120_000 });
  return { status: result.status, stdout: result.stdout.toString('latin1'), stderr: result.stderr.toString('utf8'), bytes: result.stdout };
}

describe('cowmap', () => {
  it('prints its usage and exits 2 without a command, and on an unknown one', () => {
    assert.equal(cowmap([]).status, 2);
    const unknown = cowmap(['frobnicate']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /^cowmap frobnicate: unknown command 'frobnicate'\nusage: cowmap /);
    const help = cowmap(['--help']);
    assert.equal(help.status, 0);
    for (const name of ['init', 'write', 'read', 'cycle', 'status', 'scrub', 'serve']) assert.match(help.stdout, new RegExp(`^  ${name} `, 'm'));
    const version = cowmap(['--version']);
    assert.equal(version.status, 0);
    assert.equal(version.stdout, `cowmap ${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`);
  });

  it('conform --help lists every option it parses and exits 0', async () => {
    const { conformHelp, conformOptions } = await import('./commands/conform.ts');
    const help = cowmap(['conform', '--help']);
    assert.equal(help.status, 0);
    assert.equal(help.stdout, conformHelp);
    for (const name of Object.keys(conformOptions)) assert.match(conformHelp, new RegExp(`--${name}\\b`), `--${name} is in the help`);
  });

  it('mutants --stages runs only the stages asked for, and exits 2 on an unknown stage', () => {
    const run = cowmap(['mutants', '--quick', '--time-budget', '2', '--only', 'no-cow,swap-keeps-next', '--stages', 'traces,crashes']);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^\| mutant \| what it breaks \| traces\/ \| crash exploration \(L=3 N=2\) \| first check that fails \|$/m);
    assert.match(run.stdout, /^\| no-cow \| .*caught in .*caught in /m);
    assert.match(run.stdout, /^2 caught, 0 missed/m);
    const unknown = cowmap(['mutants', '--stages', 'fuzz,nope']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no stage 'nope'/);
  });

  it('replay --model-only passes FIG. 4 (exit 0)', () => {
    const run = cowmap(['replay', '--model-only', fig4]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^ok .*fig4\.jsonl on the model/);
  });

  it('replay --model-only with one expectation changed exits 1, naming the line and both states', () => {
    const changed = readFileSync(fig4, 'utf8').replace('"next": "1101"}}', '"next": "1100"}}');
    const file = join(scratch, 'changed.jsonl');
    writeFileSync(file, changed);
    const run = cowmap(['replay', '--model-only', file]);
    assert.equal(run.status, 1);
    assert.match(run.stdout, /changed\.jsonl:13: expect/);
    assert.match(run.stdout, /next\s+1100\s+1101/);
  });

  it('replay of an invalid trace exits 2 with E_BAD_REQUEST and the line', () => {
    const file = join(scratch, 'invalid.jsonl');
    writeFileSync(file, readFileSync(fig4, 'utf8').replace('{"op": "completeCycle"}', '{"op": "completeCycle", "expectError": "E_WHAT"}'));
    const run = cowmap(['replay', '--model-only', file]);
    assert.equal(run.status, 2);
    assert.match(run.stderr, /invalid\.jsonl:\d+: E_BAD_REQUEST: expectError must be one of/);
    assert.equal(cowmap(['replay', '--model-only', join(scratch, 'missing.jsonl')]).status, 2);
    assert.equal(cowmap(['replay', '--model-only', '--bogus', fig4]).status, 2);
  });

  it('explore exits 0 and prints states, transitions, depth and seconds', () => {
    const run = cowmap(['explore', '--regions', '2', '--values', '2', '--crash']);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /states:\s+1980\n/);
    assert.match(run.stdout, /transitions:\s+8550\n/);
    assert.match(run.stdout, /depth:\s+\d+\n\s+seconds:\s+[\d.]+\n\s+states\/s:/);
    const bounded = cowmap(['explore', '--regions', '2', '--values', '2', '--states-max', '10']);
    assert.equal(bounded.status, 0);
    assert.match(bounded.stdout, /stopped early: --states-max 10/);
    assert.equal(cowmap(['explore', '--regions', 'x']).status, 2);
  });

  it('diagram prints the Mermaid statechart', () => {
    const run = cowmap(['diagram']);
    assert.equal(run.status, 0);
    assert.match(run.stdout, /^stateDiagram-v2\n/);
    assert.match(run.stdout, /replicating_drained --> idle : completeCycle/);
  });
});
