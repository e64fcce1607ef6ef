// The console summary of a conformance run, and what the JSON report carries
// beyond the result types (cowmap's version, the budget rule).

import { readFileSync } from 'node:fs';
import type { CheckResult, ConformanceReport } from './result.ts';
import { optionalLevels } from './plan.ts';

/** cowmap's version, from its package.json (found from this file, not the working directory). */
export const cowmapVersion: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export const budgetRuleSummary =
  'traces and protocol rules of every level run first, whole; ' +
  'then levels share what is left by weight (rules 3, crash 3, failpoint 3, power 2) in order; ' +
  'a level keeps back time for its long history (2.5 times its estimate, at most half the level), ' +
  'path tests 3, failpoint sweep 4 and fast-check 3 share the rest, ' +
  'the long history runs last with what the level has left; unused time flows to the next; ' +
  'a unit expected to end past its deadline does not start; ' +
  "shrinking may use the rest of the run (--keep-going: the check's share)";

/** Transitions not taken named in the summary (more: see --reports). */
const missingShownMax = 6;

/** Failed cases printed per check (the JSON report has them all). */
const failuresShownMax = 3;

function indent(text: string, prefix: string): string[] {
  return text.split('\n').map((line) => `${prefix}${line}`);
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function checkLine(check: CheckResult): string {
  const mark = check.status === 'failed' ? 'FAIL' : check.status === 'not run' ? 'skip' : 'ok  ';
  const parts = [plural(check.runs, 'run'), plural(check.steps, 'step')];
  if (check.crashPoints > 0) parts.push(plural(check.crashPoints, 'crash point'));
  if (check.geometries.length > 0)
    parts.push(`${check.geometries.length} geometr${check.geometries.length === 1 ? 'y' : 'ies'}`);
  const time =
    check.allotmentSeconds === null
      ? `${check.seconds.toFixed(1)} s`
      : `${check.seconds.toFixed(1)} s of ${check.allotmentSeconds.toFixed(1)} s`;
  return `  ${mark} ${check.id.padEnd(20)} ${check.name}: ${parts.join(', ')}, ${time}${check.cutByBudget ? ' (cut by the budget)' : ''}`;
}

function failureLines(check: CheckResult): string[] {
  const failed = check.cases.filter((item) => item.failure !== null);
  const lines: string[] = [];
  for (const item of failed.slice(0, failuresShownMax)) {
    const failure = item.failure!;
    lines.push(`       ${item.name}${failure.step === null ? '' : `, ${failure.step}`}:`);
    lines.push(...indent(failure.message, '         '));
    if (failure.trace !== null) lines.push(`       shortest failing trace: ${failure.trace}`);
    for (const command of failure.replay) lines.push(`       replay: ${command}`);
  }
  if (failed.length > failuresShownMax)
    lines.push(`       ... and ${failed.length - failuresShownMax} more failed cases (see --report)`);
  return lines;
}

export function formatReport(report: ConformanceReport): string {
  const version = report.implementation.version === null ? '' : ` ${report.implementation.version}`;
  const implementation = `${report.implementation.name}${version} (${report.command.join(' ')})`;
  const lines = [
    `cowmap ${report.cowmapVersion} conformance, adapter protocol ${report.protocol}`,
    `implementation: ${implementation}`,
    `features: ${report.features.length === 0 ? '(none)' : report.features.join(', ')}`,
    `seed: ${report.seed}; time budget: ${report.budget.seconds} s${report.strictMessages ? '; strict messages' : ''}`,
    '',
  ];
  for (const level of report.levels) {
    // A level of an optional feature that the implementation lacks is no failure: say it is not offered.
    const notOffered = level.status === 'skipped' && optionalLevels.includes(level.level);
    const status = notOffered ? 'not offered' : level.status === 'not run' ? 'NOT RUN' : level.status.toUpperCase();
    lines.push(
      `level ${level.level}: ${status}${level.reason === null ? '' : ` (${level.reason})`}` +
        `${level.checks.length === 0 ? '' : ` in ${level.seconds.toFixed(1)} s`}`,
    );
    for (const check of level.checks) {
      lines.push(checkLine(check));
      lines.push(...failureLines(check));
    }
  }
  lines.push('');
  const coverage = report.coverage;
  const missing =
    coverage.missing.length === 0
      ? ''
      : coverage.missing.length <= missingShownMax
        ? ` (not taken: ${coverage.missing.join(', ')})`
        : '';
  lines.push(`covered: ${coverage.covered}/${coverage.total} transitions of the statechart${missing}`);
  lines.push(`geometries: ${report.geometries.length === 0 ? '(none)' : report.geometries.join(', ')}`);
  lines.push(
    `${report.steps} steps, ${report.crashPoints} crash points, in ${report.seconds.toFixed(1)} s ` +
      `(${Math.round(report.steps / Math.max(report.seconds, 1e-3))} steps/s)`,
  );
  if (report.budget.cutChecks.length > 0)
    lines.push(
      `cut by the time budget: ${report.budget.cutChecks.join(', ')} (a longer --time-budget runs more of them)`,
    );
  const messages = report.warnings.messages;
  if (messages.count > 0) {
    lines.push(
      `warning: ${messages.count} rejection message${messages.count === 1 ? ' does' : 's do'} not name the operation, ` +
        'the region and the phase (docs/protocol.md section 4); they pass, --strict-messages fails them. For example:',
    );
    for (const example of messages.examples)
      lines.push(`  ${example.step}: ${JSON.stringify(example.message)} lacks ${example.missing.join(', ')}`);
  }
  if (report.error !== null) lines.push(`${report.error.code}: ${report.error.message}`);
  const passed = report.levels.filter((level) => level.status === 'passed').map((level) => level.level);
  lines.push(`levels passed: ${passed.length === 0 ? 'none' : passed.join(', ')}`);
  lines.push(
    report.interrupted
      ? 'INTERRUPTED (the report is partial)'
      : report.error !== null
        ? 'NOT JUDGED'
        : report.conforms
          ? 'CONFORMS'
          : 'DOES NOT CONFORM',
  );
  return lines.join('\n');
}

/** The JSON report (the whole ConformanceReport). */
export function jsonReport(report: ConformanceReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
