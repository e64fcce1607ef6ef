// cowmap mutants: the conform stage runs conform through `cowmap adapter --mutant
// NAME` and says where and when it caught the mutant; a mutant that none of the
// stages asked for reaches is not run, and named.

// Children of this file write no coverage files (harness/noChildCoverage.ts): they cost time, not lines.
import '../../harness/noChildCoverage.ts';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { testLevel } from '../../harness/testLevel.ts';

const bin = fileURLToPath(new URL('../cowmap.js', import.meta.url));

function cowmap(args: readonly string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('cowmap mutants (seed 1)', () => {
  // A conform run through the adapter: at the full level (make verify), make test's budget; at the quick level
  // harness/conformance/conformance.test.ts has conform catch no-cow through the adapter too.
  const fullOnly = testLevel === 'full' ? false : 'at the full level (make verify)';
  it('--stages conform: conform catches no-cow through the adapter, and the table says at which level', {
    skip: fullOnly,
  }, () => {
    const run = cowmap([
      'mutants',
      '--quick',
      '--seed',
      '1',
      '--time-budget',
      '20',
      '--only',
      'no-cow',
      '--stages',
      'conform',
    ]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^\| mutant \| caught \| level \| check that caught it \| seconds to be caught \|$/m);
    assert.match(run.stdout, /^\| no-cow \| yes \| rules \| .+ \| \d+\.\d \|$/m);
    assert.match(run.stdout, /^1 caught, 0 missed .*; conform caught 1 of 1$/m);
  });

  // The 17-region exploration: at the full level too (make test's budget); harness/mutants/mutants.test.ts aims a
  // scenario at this mutant at the quick level.
  it('--stages crashes-wide: the 17-region exploration catches the completion that writes only the first run of map bytes', {
    skip: fullOnly,
  }, () => {
    const run = cowmap([
      'mutants',
      '--quick',
      '--seed',
      '1',
      '--time-budget',
      '5',
      '--only',
      'completion-first-map-run,map-keeps-8-bits',
      '--stages',
      'crashes-wide',
    ]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(
      run.stdout,
      /^\| mutant \| what it breaks \| crash exploration, wide \(17 regions\) \| first check that fails \|$/m,
    );
    assert.match(run.stdout, /^\| completion-first-map-run \| .+ \| caught in [\d.]+ s \| .+ \|$/m);
    assert.match(run.stdout, /^1 caught, 0 missed/m);
    assert.match(
      run.stdout,
      /^not run \(none of these stages reaches their class\): map-keeps-8-bits \(reached by conform\)$/m,
    );
  });

  it('without conform, a mutant only conform reaches is not run, and named', () => {
    const run = cowmap([
      'mutants',
      '--quick',
      '--seed',
      '1',
      '--time-budget',
      '1',
      '--only',
      'no-cow,map-keeps-8-bits',
      '--stages',
      'crashes',
    ]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^1 caught, 0 missed/m);
    assert.match(
      run.stdout,
      /^not run \(none of these stages reaches their class\): map-keeps-8-bits \(reached by conform\)$/m,
    );
  });
});
