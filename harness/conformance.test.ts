// The conformance suite catches broken implementations behind the adapter
// protocol, level by level, and keeps a trace that fails again on replay.
// (make test also runs `cowmap conform` against the reference adapter and the
// Python example, expecting them to conform.)

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AdapterSut } from './adapterSut.ts';
import { runConformance, traceLevel } from './conformance.ts';
import type { Level } from './conformance.ts';
import { replayTrace } from './replay.ts';
import { readTrace } from './trace/reader.ts';
import { traceFiles } from './trace/traceFiles.ts';

const bin = fileURLToPath(new URL('../bin/cowmap.js', import.meta.url));
const tracesDir = fileURLToPath(new URL('../traces', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'cowmap-conform-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const cases: [string, Level, Level][] = [
  ['no-cow', 'rules', 'rules'],
  ['recovery-drops-cycle', 'crash', 'crash'],
  ['next-bit-after-data', 'failpoint', 'failpoint'],
];

describe('conformance', () => {
  it('classifies traces by the level they need', () => {
    const files = traceFiles(tracesDir);
    const byLevel = (level: Level) => files.filter((file) => traceLevel(readTrace(readFileSync(file, 'utf8'), file)) === level).length;
    assert.ok(byLevel('rules') >= 20);
    assert.ok(byLevel('crash') >= 5);
    assert.ok(byLevel('failpoint') >= 5);
    assert.ok(byLevel('power') >= 2);
  });

  for (const [mutant, level, failsAt] of cases) {
    it(`does not pass mutant ${mutant}: it fails at level ${failsAt} with a trace that fails again on replay`, async () => {
      const command = [process.execPath, bin, 'adapter', '--mutant', mutant];
      const failuresDir = join(scratch, mutant);
      const report = await runConformance({
        command,
        level,
        seed: 1,
        budgetSeconds: 2,
        traces: traceFiles(tracesDir),
        failuresDir,
        sut: new AdapterSut(command),
        quick: true,
      });
      assert.equal(report.conforms, false);
      const failed = report.levels.find((result) => result.status === 'failed');
      assert.equal(failed?.level, failsAt);
      const check = failed!.checks.find((result) => result.failure !== null)!;
      assert.ok(check.failure!.trace !== null, 'a failing trace is kept');
      assert.match(check.failure!.replay ?? '', /^npx cowmap replay \S+ -- /);
      const trace = readTrace(readFileSync(check.failure!.trace!, 'utf8'), check.failure!.trace!);
      const again = await replayTrace(trace, new AdapterSut(command));
      assert.ok(again.failure !== null, 'the kept trace fails again on the mutant');
      const onReference = await replayTrace(trace, new AdapterSut([process.execPath, bin, 'adapter']));
      assert.equal(onReference.failure, null, 'and passes on the reference implementation');
    });
  }
});
