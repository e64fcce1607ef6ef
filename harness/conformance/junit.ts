// The JUnit file of a conformance run, for CI: a test suite a check, a test case
// a trace, a path, a protocol rule, a sweep situation, and a (check, geometry)
// of fast-check and the long histories. fast-check runs get one case per check and geometry with their count,
// not one per run: a run has no identity across seeds (run 7 of seed 1 and run
// 7 of seed 2 are unrelated sequences), so per-run names could not be stable,
// and CI history compares cases by name. No name carries the seed.
//
// Built with xmlbuilder2, which escapes markup; characters XML 1.0 cannot carry
// at all (control characters an adapter may print) are replaced by `\u{..}`.

import { create } from 'xmlbuilder2';
import type { XMLBuilder } from 'xmlbuilder2/lib/interfaces.js';
import type { CaseResult, CheckResult, ConformanceReport } from './result.ts';

function replaceInvalid(char: string): string {
  return `\\u{${(char.codePointAt(0) ?? 0).toString(16)}}`;
}

function seconds(value: number): string {
  return value.toFixed(3);
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}

function addCase(suite: XMLBuilder, classname: string, item: CaseResult): void {
  const testcase = suite.ele('testcase', { classname, name: item.name, time: seconds(item.seconds) });
  if (item.skipped !== null) {
    testcase.ele('skipped', { message: item.skipped });
  } else if (item.failure !== null) {
    const failure = item.failure;
    const body = [
      failure.message,
      ...(failure.trace === null ? [] : [`shortest failing trace: ${failure.trace}`]),
      ...failure.replay.map((command) => `replay: ${command}`),
    ].join('\n');
    testcase.ele('failure', { message: firstLine(failure.message), type: failure.step ?? 'failure' }).txt(body);
  }
}

function addCheck(root: XMLBuilder, check: CheckResult): void {
  const failures = check.cases.filter((item) => item.failure !== null).length;
  const skipped = check.cases.filter((item) => item.skipped !== null).length;
  const suite = root.ele('testsuite', {
    name: `cowmap.${check.id}`,
    tests: String(check.cases.length),
    failures: String(failures),
    errors: '0',
    skipped: String(skipped),
    time: seconds(check.seconds),
  });
  const classname = `cowmap.${check.id.replace('/', '.')}`;
  for (const item of check.cases) addCase(suite, classname, item);
  if (check.cutByBudget)
    suite
      .ele('system-out')
      .txt(
        `${check.id} was cut by the time budget: ${check.runs} runs, ${check.steps} steps in ${check.seconds.toFixed(1)} s`,
      );
}

export function junitReport(report: ConformanceReport): string {
  const doc = create({ version: '1.0', encoding: 'UTF-8', invalidCharReplacement: replaceInvalid });
  const checks = report.levels.flatMap((level) => level.checks);
  const cases = checks.flatMap((check) => check.cases);
  const root = doc.ele('testsuites', {
    name: `cowmap conformance: ${report.implementation.name}`,
    tests: String(cases.length),
    failures: String(cases.filter((item) => item.failure !== null).length),
    time: seconds(report.seconds),
  });
  for (const level of report.levels) {
    if (level.status === 'skipped' || (level.status === 'not run' && level.checks.length === 0)) {
      const suite = root.ele('testsuite', {
        name: `cowmap.${level.level}`,
        tests: '1',
        failures: '0',
        errors: '0',
        skipped: '1',
        time: '0.000',
      });
      suite
        .ele('testcase', { classname: `cowmap.${level.level}`, name: level.level, time: '0.000' })
        .ele('skipped', { message: level.reason ?? level.status });
      continue;
    }
    for (const check of level.checks) addCheck(root, check);
  }
  if (report.error !== null || report.interrupted) {
    const suite = root.ele('testsuite', {
      name: 'cowmap.run',
      tests: '1',
      failures: '0',
      errors: '1',
      skipped: '0',
      time: seconds(report.seconds),
    });
    const message =
      report.error === null
        ? 'the run was interrupted: the report is partial'
        : `${report.error.code}: ${report.error.message}`;
    suite
      .ele('testcase', { classname: 'cowmap.run', name: 'the run', time: seconds(report.seconds) })
      .ele('error', { message: firstLine(message), type: report.error?.code ?? 'interrupted' })
      .txt(message);
  }
  const messages = report.warnings.messages;
  if (messages.count > 0) {
    const suite = root.ele('testsuite', {
      name: 'cowmap.warnings',
      tests: '1',
      failures: '0',
      errors: '0',
      skipped: '0',
      time: '0.000',
    });
    const text = [
      `${messages.count} rejection messages do not name the operation, the region and the phase (a warning; --strict-messages fails them), e.g.:`,
      ...messages.examples.map(
        (example) => `${example.step}: ${JSON.stringify(example.message)} lacks ${example.missing.join(', ')}`,
      ),
    ].join('\n');
    suite
      .ele('testcase', { classname: 'cowmap.warnings', name: 'rejection messages', time: '0.000' })
      .ele('system-out')
      .txt(text);
  }
  return `${doc.end({ prettyPrint: true })}\n`;
}
