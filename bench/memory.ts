// 5. Memory: the peak resident memory of a child process running fast-check for a
// time budget (two minutes in the full run), and of a child running one cycle on
// the cycle benchmark's volume (1 GiB in the full run). The peak is read by
// /usr/bin/time -v when present (else the child's own process.resourceUsage()),
// both are recorded. The cycle child must not hold the volume in memory: a peak
// above cyclePeakRssBytesMax is a failed check.

import { join } from 'node:path';
import type { CycleVolume } from './cycleCost.ts';
import { Checks, type Figure, type Log, type SectionResult } from './report.ts';
import { summarize } from './stats.ts';
import { runNodeChild } from './system.ts';

export interface MemoryConfig {
  readonly root: string;
  readonly repoRoot: string;
  readonly fuzzBudgetMs: number;
  readonly cycleRepetitions: number;
  readonly dirtyFraction: number;
  readonly seed: number;
}

/** A cycle's child may use this much at most: a quarter of a 1 GiB volume. */
export const cyclePeakRssBytesMax = 256 << 20;

function peakOf(run: ReturnType<typeof runNodeChild>): number | null {
  if (run.peakRssBytesByTime !== null) return run.peakRssBytesByTime;
  const own = run.report?.maxRssBytes;
  return typeof own === 'number' ? own : null;
}

const mib = (bytes: number) => `${(bytes / (1 << 20)).toFixed(1)} MiB`;

export function benchMemory(config: MemoryConfig, cycleVolume: CycleVolume | null, log: Log): SectionResult {
  const checks = new Checks();
  const figures: Figure[] = [];
  const data: Record<string, unknown> = {};

  if (cycleVolume !== null) {
    const dirtyCount = Math.max(1, Math.round(cycleVolume.regions * config.dirtyFraction));
    const peaks: number[] = [];
    const runs: Record<string, unknown>[] = [];
    const failures: string[] = [];
    for (let repetition = 0; repetition < config.cycleRepetitions; repetition++) {
      const run = runNodeChild(
        join(config.repoRoot, 'bench', 'children', 'cycleChild.ts'),
        [cycleVolume.dir, String(dirtyCount), String(config.seed * 1_000 + 500 + repetition)],
        config.repoRoot,
        300_000,
      );
      const peak = peakOf(run);
      runs.push({
        status: run.status,
        peakRssBytesByTime: run.peakRssBytesByTime,
        report: run.report,
        seconds: run.seconds,
      });
      if (run.status !== 0 || run.report === null || run.report.ok !== true || peak === null) {
        failures.push(
          `repetition ${repetition}: exit ${run.status}, report ${JSON.stringify(run.report)}: ${run.stderrTail.split('\n').slice(-3).join(' ')}`,
        );
        continue;
      }
      peaks.push(peak);
      if (peak > cyclePeakRssBytesMax)
        failures.push(`repetition ${repetition}: peak RSS ${mib(peak)} > ${mib(cyclePeakRssBytesMax)}`);
      log(
        `  memory: cycle child ${repetition + 1}/${config.cycleRepetitions}: peak RSS ${mib(peak)} (${dirtyCount} regions sent, ${(run.report.cycleSeconds as number).toFixed(3)} s)`,
      );
    }
    const volumeBytes = cycleVolume.regions * cycleVolume.regionSize;
    checks.expectAll(
      `memory: a cycle on the ${mib(volumeBytes)} volume runs in a child with peak RSS <= ${mib(cyclePeakRssBytesMax)}, and its secondary holds the dirty regions`,
      failures,
      peaks.length > 0 ? `peak ${mib(Math.max(...peaks))}` : 'no run',
    );
    if (peaks.length > 0) {
      const summary = summarize(peaks);
      figures.push({
        key: 'cyclePeakRssBytes',
        label: `peak RSS of a child running one cycle on the ${mib(volumeBytes)} volume (${dirtyCount} regions sent)`,
        unit: 'bytes',
        summary,
        target: {
          text: `<= ${mib(cyclePeakRssBytesMax)} (well under the volume)`,
          met: summary.max <= cyclePeakRssBytesMax,
        },
        detail: `${((summary.median / volumeBytes) * 100).toFixed(1)}% of the volume size`,
      });
    }
    data.cycle = { volumeBytes, dirtyRegions: dirtyCount, runs };
  }

  log(`  memory: fast-check child for ${config.fuzzBudgetMs / 1000} s`);
  const run = runNodeChild(
    join(config.repoRoot, 'bench', 'children', 'fuzzChild.ts'),
    [String(config.fuzzBudgetMs), String(config.seed + 100), join(config.root, 'fuzz-child-failures')],
    config.repoRoot,
    config.fuzzBudgetMs + 600_000,
  );
  const peak = peakOf(run);
  const fuzzOk = run.status === 0 && run.report !== null && run.report.ok === true && peak !== null;
  checks.expect(
    `memory: the ${config.fuzzBudgetMs / 1000} s fast-check child finds no failure`,
    fuzzOk,
    fuzzOk
      ? `${run.report!.steps} steps, ${run.report!.runs} sequences`
      : `exit ${run.status}, report ${JSON.stringify(run.report)}: ${run.stderrTail.split('\n').slice(-3).join(' ')}`,
  );
  if (peak !== null) {
    figures.push({
      key: 'fuzzPeakRssBytes',
      label: `peak RSS of a ${config.fuzzBudgetMs / 1000} s fast-check run (child process, 1 run)`,
      unit: 'bytes',
      summary: summarize([peak]),
      detail:
        run.report === null
          ? ''
          : `${run.report.steps} steps, ${Math.round((run.report.steps as number) / (run.report.seconds as number))} steps/s`,
    });
    log(`  memory: fast-check child peak RSS ${mib(peak)}`);
  }
  data.fuzz = {
    budgetMs: config.fuzzBudgetMs,
    status: run.status,
    peakRssBytesByTime: run.peakRssBytesByTime,
    report: run.report,
    seconds: run.seconds,
  };

  return {
    section: 'memory',
    figures,
    checks: checks.list,
    notes: [
      `Memory: peak resident set size read by /usr/bin/time -v (the child's own process.resourceUsage().maxRSS is in results.json too); the fast-check figure is one run of ${config.fuzzBudgetMs / 1000} s, the cycle figure ${config.cycleRepetitions} child runs.`,
    ],
    data,
  };
}
