// The crash exploration's report: the summary table, the crash states per kind,
// and a failure in words with its trace.

import type { ExplorationFailure, ExplorationOptions, ExplorationStats, InsideKind } from '../crashExploration.ts';
import { explorationDefaults, shortenLabels, statesPerKind } from '../crashExploration.ts';
import { explorationModes } from './choices.ts';

export function statesPerSecond(stats: ExplorationStats): number {
  return Math.round(stats.crashStates / Math.max(stats.seconds, 1e-6));
}

export function formatSummary(stats: ExplorationStats, options: ExplorationOptions): string {
  const modes = explorationModes.filter((mode) => (options.modes ?? explorationModes).includes(mode));
  const row = (name: string, value: string | number) =>
    `  ${name.padEnd(34)} ${typeof value === 'number' ? value.toLocaleString('en-US') : value}`;
  const lines = [
    `crash exploration: length ${options.length}, regions ${options.regions}${options.activeRegions === undefined ? '' : ` (written: ${options.activeRegions.join(', ')})`}, values ${options.values}, region size ${options.regionSize ?? explorationDefaults.regionSize}, modes ${modes.join(',')}, subset bits ${options.subsetBitsMax ?? explorationDefaults.subsetBitsMax}, samples ${options.samplesMax ?? explorationDefaults.samplesMax}, on ${options.volumeName ?? 'the reference implementation'}`,
    row('sequences covered', stats.sequences),
    row(
      'distinct prefixes (deduplicated)',
      `${stats.prefixes.toLocaleString('en-US')} reached, ${stats.expanded.toLocaleString('en-US')} expanded`,
    ),
    row(
      '(prefix, op) runs',
      `${stats.opRuns.toLocaleString('en-US')} (${stats.rejected.toLocaleString('en-US')} rejected: no I/O to crash in)`,
    ),
    row(
      'crash points',
      `${stats.crashPoints.toLocaleString('en-US')} (k = 0..io of each accepted op, and between ops at each prefix)`,
    ),
    row(
      '  exhausted / sampled',
      `${stats.exhaustedPoints.toLocaleString('en-US')} / ${stats.sampledPoints.toLocaleString('en-US')}`,
    ),
    row('crash runs', stats.runs),
    row('crash states checked', stats.crashStates),
    row(
      '  duplicates skipped',
      `${stats.duplicates.toLocaleString('en-US')} (same post-crash files at the same crash site)`,
    ),
    row(
      'power losses after recovery',
      `${stats.powerLossesAfterRecovery.toLocaleString('en-US')} (process crashes that left unsynced writes)`,
    ),
  ];
  lines.push(
    `  ${'mode'.padEnd(8)} ${'points'.padStart(9)} ${'sampled'.padStart(8)} ${'runs'.padStart(10)} ${'states'.padStart(10)} ${'bits max'.padStart(9)}`,
  );
  for (const mode of modes) {
    const m = stats.byMode[mode];
    const bits = mode === 'process' ? '-' : String(stats.choiceBitsMax[mode]);
    lines.push(
      `  ${mode.padEnd(8)} ${String(m.points).padStart(9)} ${String(m.sampledPoints).padStart(8)} ${String(m.runs).padStart(10)} ${String(m.states).padStart(10)} ${bits.padStart(9)}`,
    );
  }
  const inside = (kind: InsideKind) => stats.inside[kind];
  lines.push(
    `  ${'inside'.padEnd(8)} ${'points'.padStart(9)} ${''.padStart(8)} ${'runs'.padStart(10)} ${'states'.padStart(10)}`,
  );
  for (const kind of ['create', 'recovery', 'scrub'] as const) {
    lines.push(
      `  ${kind.padEnd(8)} ${String(inside(kind).points).padStart(9)} ${''.padStart(8)} ${String(inside(kind).runs).padStart(10)} ${String(inside(kind).states).padStart(10)}`,
    );
  }
  lines.push(
    row(
      'rot (flips / E_CORRUPT / S = P)',
      `${stats.rot.runs.toLocaleString('en-US')} / ${stats.rot.detected.toLocaleString('en-US')} / ${stats.rot.healed.toLocaleString('en-US')}`,
    ),
  );
  lines.push(
    row(
      'crash states per kind',
      statesPerKind(stats)
        .map(({ kind, states }) => `${kind} ${states.toLocaleString('en-US')}`)
        .join(', '),
    ),
  );
  for (const note of stats.notes) lines.push(`  note: ${note}`);
  lines.push(
    row(
      'oracle steps / invariant checks',
      `${stats.oracle.steps.toLocaleString('en-US')} / ${stats.oracle.invariantChecks.toLocaleString('en-US')}`,
    ),
  );
  lines.push(row('seconds', stats.seconds.toFixed(2)));
  lines.push(row('crash states/s', statesPerSecond(stats)));
  lines.push(row('crash runs/s', Math.round(stats.runs / Math.max(stats.seconds, 1e-6))));
  return lines.join('\n');
}

/** The failure in words, labels shortened, then its trace as saved. */
export function formatFailureReport(failure: ExplorationFailure): string {
  const lines = [
    `FAIL ${shortenLabels(failure.description)}`,
    `  ${shortenLabels(failure.message).split('\n').join('\n  ')}`,
  ];
  if (failure.differences.length > 0) {
    const fieldWidth = Math.max(5, ...failure.differences.map((d) => d.field.length));
    const expectedWidth = Math.max(8, ...failure.differences.map((d) => shortenLabels(d.expected).length));
    lines.push(`  ${'field'.padEnd(fieldWidth)}  ${'expected'.padEnd(expectedWidth)}  observed`);
    for (const d of failure.differences)
      lines.push(
        `  ${d.field.padEnd(fieldWidth)}  ${shortenLabels(d.expected).padEnd(expectedWidth)}  ${shortenLabels(d.observed)}`,
      );
  }
  if (failure.notReplayable !== undefined) {
    lines.push('  no v1 trace: trace format v1 cannot say this case; the steps are in words below');
  } else {
    lines.push(
      failure.reproduced
        ? '  rerun from scratch (no restore): fails the same way'
        : '  WARNING: rerun from scratch (no restore), the trace does NOT fail',
    );
    if (!failure.exact)
      lines.push('  note: the trace cannot state the exact crash choice in format v1 (see its # comments)');
  }
  lines.push(failure.file === null ? '  trace (not saved):' : `  trace saved to ${failure.file}:`);
  lines.push(failure.trace.trimEnd());
  return lines.join('\n');
}
