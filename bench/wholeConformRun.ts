// conformRunStepsPerSecondPython's run (conformSpeed.ts): a whole `conform` run
// with a time budget, every level the adapter offers, as a user starts it.

import { join } from 'node:path';
import { AdapterSut } from '../harness/adapter/adapterSut.ts';
import { runConformance } from '../harness/conformance/run.ts';
import { bundledTracesDir, traceFiles } from '../harness/trace/traceFiles.ts';
import { type ConformSpeedConfig, loadAverageNow, requestTimeoutMs, type RunFigures } from './conformSpeedSettings.ts';

/** A whole `conform --time-budget S` run (every level the adapter offers), as a user starts it. */
export async function runWholeConform(
  command: readonly string[],
  config: ConformSpeedConfig,
  seed: number,
): Promise<RunFigures & { readonly problem: string | null }> {
  const loadAverage = loadAverageNow();
  const report = await runConformance({
    command,
    sut: new AdapterSut(command, { cwd: config.repoRoot, requestTimeoutMs }),
    seed,
    budgetSeconds: config.conformBudgetSeconds,
    traces: traceFiles(bundledTracesDir),
    tracesDir: bundledTracesDir,
    failuresDir: join(config.root, 'conform-run-failures'),
  });
  const failed = report.levels.flatMap((level) => level.checks).find((check) => check.failure !== null);
  const problem =
    report.error !== null
      ? `${report.error.code}: ${report.error.message}`
      : failed !== undefined
        ? `${failed.id}: ${failed.failure!.message.split('\n')[0]}`
        : report.conforms
          ? null
          : 'it does not conform';
  return { steps: report.steps, seconds: report.seconds, loadAverage, problem };
}
