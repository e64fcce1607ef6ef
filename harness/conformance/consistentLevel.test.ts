// The conformance level consistent (docs/conformance.md): the reference adapter,
// whose volumes keep a consistent secondary when asked, passes it; a mutant whose
// consistent image takes every transfer at once (no journal) fails it with a trace
// that fails again; the Python example, which does not offer the feature, is told
// the level is not offered, which is no failure of the run.

import '../noChildCoverage.ts'; // first: the adapters it starts write no coverage files
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AdapterSut } from '../adapter/adapterSut.ts';
import { replayTrace } from '../replay.ts';
import { consistentVolumes } from '../sut/systemUnderTest.ts';
import { atLevel } from '../testLevel.ts';
import { readTrace } from '../trace/reader.ts';
import { traceFiles } from '../trace/traceFiles.ts';
import { formatReport } from './report.ts';
import { runConformance } from './run.ts';

const bin = fileURLToPath(new URL('../../bin/cowmap.js', import.meta.url));
const mutantEntry = fileURLToPath(new URL('../adapter/consistentMutant.ts', import.meta.url));
const tracesDir = fileURLToPath(new URL('../../traces', import.meta.url));
const consistentTraces = traceFiles(tracesDir).filter((file) => file.includes('/consistent/'));
const scratch = mkdtempSync(join(tmpdir(), 'cowmap-conform-consistent-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const reference = [process.execPath, bin, 'adapter'];
const mutant = [process.execPath, '--import', 'tsx', mutantEntry];

function consistentLevel(command: readonly string[], traces: readonly string[], budgetSeconds: number, name: string) {
  return runConformance({
    command,
    level: 'consistent',
    levelMode: 'only',
    seed: 1,
    budgetSeconds,
    traces,
    tracesDir,
    failuresDir: join(scratch, name),
    sut: new AdapterSut(command),
    quick: true,
  });
}

describe('the conformance level consistent', { concurrency: true }, () => {
  it('the reference passes it: D compared after every step, kills, failpoints and the sweep', async () => {
    // make test: the FIG. 4 trace with D and a few seconds of the rest; make verify: every trace, half a minute.
    const fig4 = consistentTraces.filter((file) => file.endsWith('fig4-consistent.jsonl'));
    const report = await consistentLevel(reference, atLevel(fig4, consistentTraces), atLevel(3, 30), 'reference');
    assert.equal(report.error, null);
    const level = report.levels[0]!;
    assert.equal(level.level, 'consistent');
    assert.equal(level.status, 'passed', formatReport(report));
    assert.ok(level.checks.find((check) => check.id === 'consistent/traces')!.steps > 20);
    assert.equal(report.conforms, true);
  });

  it('a consistent image without a journal fails it, with a trace that fails again on replay', async () => {
    const report = await consistentLevel(mutant, consistentTraces, 3, 'mutant');
    assert.equal(report.conforms, false);
    const check = report.levels[0]!.checks.find((result) => result.failure !== null)!;
    assert.match(check.failure!.message, /consistent/);
    const trace = readTrace(readFileSync(check.failure!.trace!, 'utf8'), check.failure!.trace!);
    // A trace of the consistent image replays on volumes that keep one (docs/traces.md).
    const again = await replayTrace(trace, consistentVolumes(new AdapterSut(mutant)));
    assert.ok(again.failure !== null, 'the trace fails again on the mutant');
  });

  it('an implementation without the feature is told the level is not offered, and nothing fails', async () => {
    const python = ['python3', fileURLToPath(new URL('../../examples/python-adapter/adapter.py', import.meta.url))];
    const report = await consistentLevel(python, consistentTraces, 2, 'python');
    assert.equal(report.error, null);
    assert.deepEqual(
      report.levels.map((level) => level.status),
      ['skipped'],
    );
    assert.match(
      formatReport(report),
      /^level consistent: not offered \(the implementation does not offer consistent/m,
    );
    assert.ok(report.levels.every((level) => level.status !== 'failed'));
  });
});
