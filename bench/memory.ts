// 5. Memory: the peak resident memory of a child process running fast-check for a
// time budget (two minutes in the full run), and of a child running one cycle on
// the cycle benchmark's volume (1 GiB in the full run). The peak is read by
// /usr/bin/time -v when present (else the child's own process.resourceUsage()),
// both are recorded. The cycle child must not hold the volume in memory: a peak
// above cyclePeakRssBytesMax is a failed check.

import { join } from 'node:path';
import type { CycleVolume } from './cycleVolume.ts';
import { describeChildFailure, peakRssBytesOf, runNodeChild } from './nodeChild.ts';
import { Checks, type Figure, type Log, type SectionResult } from './report.ts';
import { summarize } from './stats.ts';
import { mib } from './units.ts';

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
/** How long a cycle child may run. */
const cycleChildTimeoutMs = 300_000;
/** How much longer than its budget the fast-check child may run. */
const fuzzChildGraceMs = 600_000;

/** A part of the section: its figures and what goes into results.json. */
interface Measured {
  readonly figures: Figure[];
  readonly data: Record<string, unknown>;
}

/** The cycle children, one a repetition, each dirtying and sending its own seeded regions. */
function measureCycleChild(config: MemoryConfig, cycleVolume: CycleVolume, checks: Checks, log: Log): Measured {
  const dirtyCount = Math.max(1, Math.round(cycleVolume.regions * config.dirtyFraction));
  const peaks: number[] = [];
  const runs: Record<string, unknown>[] = [];
  const failures: string[] = [];
  for (let repetition = 0; repetition < config.cycleRepetitions; repetition++) {
    const run = runNodeChild(
      join(config.repoRoot, 'bench', 'children', 'cycleChild.ts'),
      [cycleVolume.dir, String(dirtyCount), String(config.seed * 1_000 + 500 + repetition)],
      config.repoRoot,
      cycleChildTimeoutMs,
    );
    const peak = peakRssBytesOf(run);
    const { status, peakRssBytesByTime, report, seconds } = run;
    runs.push({ status, peakRssBytesByTime, report, seconds });
    if (status !== 0 || report === null || report.ok !== true || peak === null) {
      failures.push(`repetition ${repetition}: ${describeChildFailure(run)}`);
      continue;
    }
    peaks.push(peak);
    if (peak > cyclePeakRssBytesMax)
      failures.push(`repetition ${repetition}: peak RSS ${mib(peak)} > ${mib(cyclePeakRssBytesMax)}`);
    log(
      `  memory: cycle child ${repetition + 1}/${config.cycleRepetitions}: peak RSS ${mib(peak)} ` +
        `(${dirtyCount} regions sent, ${(report.cycleSeconds as number).toFixed(3)} s)`,
    );
  }
  const volumeBytes = cycleVolume.regions * cycleVolume.regionSize;
  checks.expectAll(
    `memory: a cycle on the ${mib(volumeBytes)} volume runs in a child with peak RSS <= ${mib(cyclePeakRssBytesMax)}, ` +
      'and its secondary holds the dirty regions',
    failures,
    peaks.length > 0 ? `peak ${mib(Math.max(...peaks))}` : 'no run',
  );
  const figures: Figure[] = [];
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
  return { figures, data: { volumeBytes, dirtyRegions: dirtyCount, runs } };
}

/** One fast-check child for the whole budget. */
function measureFuzzChild(config: MemoryConfig, checks: Checks, log: Log): Measured {
  const budgetSeconds = config.fuzzBudgetMs / 1000;
  log(`  memory: fast-check child for ${budgetSeconds} s`);
  const run = runNodeChild(
    join(config.repoRoot, 'bench', 'children', 'fuzzChild.ts'),
    [String(config.fuzzBudgetMs), String(config.seed + 100), join(config.root, 'fuzz-child-failures')],
    config.repoRoot,
    config.fuzzBudgetMs + fuzzChildGraceMs,
  );
  const { status, peakRssBytesByTime, report, seconds } = run;
  const peak = peakRssBytesOf(run);
  const fuzzOk = status === 0 && report !== null && report.ok === true && peak !== null;
  checks.expect(
    `memory: the ${budgetSeconds} s fast-check child finds no failure`,
    fuzzOk,
    fuzzOk ? `${report!.steps} steps, ${report!.runs} sequences` : describeChildFailure(run),
  );
  const figures: Figure[] = [];
  if (peak !== null) {
    figures.push({
      key: 'fuzzPeakRssBytes',
      label: `peak RSS of a ${budgetSeconds} s fast-check run (child process, 1 run)`,
      unit: 'bytes',
      summary: summarize([peak]),
      detail:
        report === null
          ? ''
          : `${report.steps} steps, ${Math.round((report.steps as number) / (report.seconds as number))} steps/s`,
    });
    log(`  memory: fast-check child peak RSS ${mib(peak)}`);
  }
  return { figures, data: { budgetMs: config.fuzzBudgetMs, status, peakRssBytesByTime, report, seconds } };
}

export function benchMemory(config: MemoryConfig, cycleVolume: CycleVolume | null, log: Log): SectionResult {
  const checks = new Checks();
  const cycle = cycleVolume === null ? null : measureCycleChild(config, cycleVolume, checks, log);
  const fuzz = measureFuzzChild(config, checks, log);
  return {
    section: 'memory',
    figures: [...(cycle?.figures ?? []), ...fuzz.figures],
    checks: checks.list,
    notes: [
      'Memory: peak resident set size read by /usr/bin/time -v ' +
        "(the child's own process.resourceUsage().maxRSS is in results.json too); " +
        `the fast-check figure is one run of ${config.fuzzBudgetMs / 1000} s, the cycle figure ${config.cycleRepetitions} child runs.`,
    ],
    data: cycle === null ? { fuzz: fuzz.data } : { cycle: cycle.data, fuzz: fuzz.data },
  };
}
