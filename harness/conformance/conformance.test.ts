// The conformance suite catches broken implementations behind the adapter
// protocol, level by level, and keeps a trace that fails again on replay.
// (make test also runs `cowmap conform` against the reference adapter and the
// Python example, expecting them to conform.)

import '../noChildCoverage.ts'; // first: the adapters and cowmap processes it starts write no coverage files
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { XMLValidator } from 'fast-xml-parser';
import { AdapterSut } from '../adapter/adapterSut.ts';
import { junitReport } from './junit.ts';
import { runConformance } from './run.ts';
import { traceLevel } from './plan.ts';
import type { ConformanceReport } from './result.ts';
import type { Level } from './plan.ts';
import { replayTrace } from '../replay.ts';
import { readTrace } from '../trace/reader.ts';
import { traceFiles } from '../trace/traceFiles.ts';
import { atLevel } from '../testLevel.ts';

const bin = fileURLToPath(new URL('../../bin/cowmap.js', import.meta.url));
const tracesDir = fileURLToPath(new URL('../../traces', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'cowmap-conform-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const allCases: [string, Level, Level][] = [
  ['no-cow', 'rules', 'rules'],
  ['recovery-drops-cycle', 'crash', 'crash'],
  ['next-bit-after-data', 'failpoint', 'failpoint'],
];
/**
 * make test runs the rules case only (the crash and failpoint cases are half a
 * minute each of a loaded make test; its smoke mutation run catches both mutants
 * by crash exploration); make verify runs all three (harness/testLevel.ts).
 */
const cases = atLevel(allCases.slice(0, 1), allCases);

/** Characters XML 1.0 cannot carry in any form (its Char production). */
const notXmlChar = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

const reports = new Map<string, Promise<ConformanceReport>>();

/** The run of `cowmap conform --level LEVEL` (only) against the adapter of a mutant: one run per mutant, shared. */
function mutantReport(mutant: string, level: Level): Promise<ConformanceReport> {
  let report = reports.get(mutant);
  if (report === undefined) {
    const command = [process.execPath, bin, 'adapter', '--mutant', mutant];
    report = runConformance({
      command,
      level,
      levelMode: 'only',
      seed: 1,
      budgetSeconds: 2,
      traces: traceFiles(tracesDir),
      tracesDir,
      failuresDir: join(scratch, mutant),
      sut: new AdapterSut(command),
      quick: true,
    });
    reports.set(mutant, report);
  }
  return report;
}

// The cases run at the same time: each spends most of its time waiting on its
// adapter process, so together they take about as long as the longest.
describe('conformance', { concurrency: true }, () => {
  it('classifies traces by the level they need', () => {
    const files = traceFiles(tracesDir);
    const byLevel = (level: Level) =>
      files.filter((file) => traceLevel(readTrace(readFileSync(file, 'utf8'), file)) === level).length;
    assert.ok(byLevel('rules') >= 20);
    assert.ok(byLevel('crash') >= 5);
    assert.ok(byLevel('failpoint') >= 5);
    assert.ok(byLevel('power') >= 2);
  });

  for (const [mutant, level, failsAt] of cases) {
    it(`does not pass mutant ${mutant}: --level ${level} fails with a trace that fails again on replay`, async () => {
      const command = [process.execPath, bin, 'adapter', '--mutant', mutant];
      const report = await mutantReport(mutant, level);
      assert.equal(report.conforms, false);
      assert.equal(report.error, null);
      const failed = report.levels.find((result) => result.status === 'failed');
      assert.equal(failed?.level, failsAt);
      const check = failed!.checks.find((result) => result.failure !== null)!;
      assert.ok(check.failure!.trace !== null, 'a failing trace is kept');
      assert.match(check.failure!.replay[0] ?? '', /^npx cowmap replay \S+ -- /);
      assert.match(check.failure!.message, /expected/, 'the failure shows expected and observed');
      const trace = readTrace(readFileSync(check.failure!.trace!, 'utf8'), check.failure!.trace!);
      const again = await replayTrace(trace, new AdapterSut(command));
      assert.ok(again.failure !== null, 'the kept trace fails again on the mutant');
      const onReference = await replayTrace(trace, new AdapterSut([process.execPath, bin, 'adapter']));
      assert.equal(onReference.failure, null, 'and passes on the reference implementation');
    });
  }

  it('prints a fast-check failure as a conform command that replays it against the adapter, and that command fails again', async () => {
    const command = [process.execPath, bin, 'adapter', '--mutant', 'transfer-sends-primary'];
    const seed = 7;
    console.log(`seed ${seed}`);
    const common = {
      command,
      checks: ['rules/fast-check'],
      level: 'rules' as const,
      levelMode: 'only' as const,
      seed,
      budgetSeconds: 60,
      traces: [],
      failuresDir: join(scratch, 'path'),
      geometry: { regions: 1, regionSize: 65536 },
    };
    const report = await runConformance({ ...common, sut: new AdapterSut(command) });
    const failure = report.levels[0]!.checks[0]!.failure;
    assert.ok(failure !== null, 'the mutant fails fast-check');
    const printed = failure.replay.find((line) => line.startsWith('npx cowmap conform'));
    const match = /--seed (\d+) --path (\S+) --check (\S+) --regions (\d+) --region-size (\d+) -- (.+)$/.exec(
      printed ?? '',
    );
    assert.ok(match !== null, `a conform replay command: ${printed}`);
    assert.equal(match[3], 'rules/fast-check');
    assert.equal(match[6], command.join(' '), 'against the same adapter command');
    // The saved trace says the same: its replay commands run the adapter, not the reference.
    const saved = readFileSync(failure.trace!, 'utf8');
    assert.ok(
      saved.includes(`# ${printed}`) || saved.includes(`#   ${printed}`),
      `the saved trace carries the conform command:\n${saved.slice(0, 2000)}`,
    );
    const replays = saved.split('\n').filter((line) => line.includes('npx cowmap replay '));
    assert.ok(
      replays.length > 0 && replays.every((line) => line.endsWith(` -- ${command.join(' ')}`)),
      `and replays against the adapter: ${replays.join(' | ')}`,
    );
    const again = await runConformance({
      ...common,
      fuzzPath: match[2]!.replace(/^'|'$/g, ''),
      sut: new AdapterSut(command),
    });
    const replayed = again.levels[0]!.checks[0]!;
    assert.equal(replayed.status, 'failed');
    assert.equal(replayed.runs >= 1, true);
  });

  it('writes a JUnit file that parses, a case per trace, whatever the adapter printed', async () => {
    const report = await mutantReport('no-cow', 'rules');
    // What an adapter may put in a message: escapes of a terminal, NUL, a lone surrogate, markup.
    const noisy = JSON.parse(JSON.stringify(report), (key, value) =>
      key === 'message' && typeof value === 'string' ? `${value} \u0000\u001b[31mred\u0007 <b>&</b> ]]> \ud800` : value,
    ) as ConformanceReport;
    const xml = junitReport(noisy);
    assert.equal(XMLValidator.validate(xml), true);
    assert.doesNotMatch(xml, notXmlChar);
    assert.match(xml, /\\u\{1b\}\[31mred/, 'control characters are shown, not dropped');
    const traceCases = report.levels[0]!.checks.find((check) => check.id === 'rules/traces')!.cases;
    for (const item of traceCases) assert.ok(xml.includes(`name="${item.name}"`), `a test case for ${item.name}`);
    assert.doesNotMatch(xml, /name="[^"]*seed/i, 'no test name carries the seed');
    assert.match(xml, /<failure message="[^"]+"/);
  });
});
