// Small helpers shared by the commands that parse with node:util directly:
// integer options and usage errors. A usage error prints in the one format of
// every command (impl/commandLine.ts formatUsageError): "cowmap CMD: problem",
// then "usage: cowmap ..."; the status is 2.

import { exitUsage, formatUsageError } from '../../impl/commandLine.ts';
import { usageOf } from '../usage.ts';

/** Problems found while checking options, printed by the next usageError. */
const pendingProblems: string[] = [];

/** Notes a usage problem for the next usageError, and returns null (for `return usageProblem(...)`). */
export function usageProblem(problem: string): null {
  pendingProblems.push(problem);
  return null;
}

export function integerOption(name: string, text: string | undefined, min: number, max: number): number | null {
  if (text === undefined || !/^-?\d+$/.test(text)) return usageProblem(`${name} needs an integer, got '${text ?? ''}'`);
  const value = Number(text);
  if (value < min || value > max) return usageProblem(`${name} must be in ${min}..${max}, got ${text}`);
  return value;
}

/** Prints `detail` (or the problems noted since the last call) as a usage error of `command`; returns 2. */
export function usageError(command: string, detail?: string): number {
  const problems = detail === undefined ? [...pendingProblems] : [detail];
  pendingProblems.length = 0;
  process.stderr.write(
    formatUsageError(command, usageOf(command), problems.length === 0 ? 'bad usage' : problems.join('; ')),
  );
  return exitUsage;
}
