// The crash exploration's report: the summary table, the crash states per kind,
// and a failure in words with its trace.

import type { ExplorationMode } from './choices.ts';
import { explorationModes } from './choices.ts';
import type { ExplorationFailure } from './failureTrace.ts';
import { shortenLabels } from './operations.ts';
import type { ExplorationOptions } from './options.ts';
import { explorationDefaults } from './options.ts';
import type { ExplorationStats, InsideStats } from './stats.ts';

/** The crash states per kind, as `cowmap crashes` prints them. */
export function statesPerKind(stats: ExplorationStats): Array<{ kind: string; states: number }> {
  return [
    { kind: 'process', states: stats.byMode.process.states },
    { kind: 'power', states: stats.byMode.power.states },
    { kind: 'torn', states: stats.byMode.torn.states },
    { kind: 'rot', states: stats.rot.runs },
    { kind: 'inside create', states: stats.inside.create.states },
    { kind: 'inside recovery', states: stats.inside.recovery.states },
    { kind: 'inside scrub', states: stats.inside.scrub.states },
  ];
}

export function statesPerSecond(stats: ExplorationStats): number {
  return Math.round(stats.crashStates / Math.max(stats.seconds, 1e-6));
}

/** A count as the report prints it. */
function count(value: number): string {
  return value.toLocaleString('en-US');
}

/** A row of the summary: its name, then its value. */
function row(name: string, value: string | number): string {
  return `  ${name.padEnd(34)} ${typeof value === 'number' ? count(value) : value}`;
}

/** A row of the mode and inside tables: a name, then right-aligned columns. */
function tableRow(name: string, cells: readonly string[]): string {
  const widths = [9, 8, 10, 10, 9];
  return `  ${name.padEnd(8)} ${cells.map((cell, index) => cell.padStart(widths[index]!)).join(' ')}`;
}

/** The first line: what was explored. */
function headline(options: ExplorationOptions, modes: readonly string[]): string {
  const written = options.activeRegions === undefined ? '' : ` (written: ${options.activeRegions.join(', ')})`;
  return (
    `crash exploration: length ${options.length}, regions ${options.regions}${written}, values ${options.values}, ` +
    `region size ${options.regionSize ?? explorationDefaults.regionSize}, modes ${modes.join(',')}, ` +
    `subset bits ${options.subsetBitsMax ?? explorationDefaults.subsetBitsMax}, ` +
    `samples ${options.samplesMax ?? explorationDefaults.samplesMax}, ` +
    `on ${options.volumeName ?? 'the reference implementation'}`
  );
}

/** The prefixes, operations, crash points and runs. */
function countRows(stats: ExplorationStats): string[] {
  return [
    row('sequences covered', stats.sequences),
    row('distinct prefixes (deduplicated)', `${count(stats.prefixes)} reached, ${count(stats.expanded)} expanded`),
    row('(prefix, op) runs', `${count(stats.opRuns)} (${count(stats.rejected)} rejected: no I/O to crash in)`),
    row('crash points', `${count(stats.crashPoints)} (k = 0..io of each accepted op, and between ops at each prefix)`),
    row('  exhausted / sampled', `${count(stats.exhaustedPoints)} / ${count(stats.sampledPoints)}`),
    row('crash runs', stats.runs),
    row('crash states checked', stats.crashStates),
    row('  duplicates skipped', `${count(stats.duplicates)} (same post-crash files at the same crash site)`),
    row(
      'power losses after recovery',
      `${count(stats.powerLossesAfterRecovery)} (process crashes that left unsynced writes)`,
    ),
  ];
}

/** The table of each mode, then the table of the crashes inside create, recovery and scrub. */
function tableRows(stats: ExplorationStats, modes: readonly ExplorationMode[]): string[] {
  const lines = [tableRow('mode', ['points', 'sampled', 'runs', 'states', 'bits max'])];
  for (const mode of modes) {
    const m = stats.byMode[mode];
    const bits = mode === 'process' ? '-' : String(stats.choiceBitsMax[mode]);
    lines.push(tableRow(mode, [m.points, m.sampledPoints, m.runs, m.states].map(String).concat(bits)));
  }
  lines.push(tableRow('inside', ['points', '', 'runs', 'states']));
  for (const kind of ['create', 'recovery', 'scrub'] as const) {
    const inside: InsideStats = stats.inside[kind];
    lines.push(tableRow(kind, [String(inside.points), '', String(inside.runs), String(inside.states)]));
  }
  return lines;
}

export function formatSummary(stats: ExplorationStats, options: ExplorationOptions): string {
  const modes = explorationModes.filter((mode) => (options.modes ?? explorationModes).includes(mode));
  const kinds = statesPerKind(stats).map(({ kind, states }) => `${kind} ${count(states)}`);
  return [
    headline(options, modes),
    ...countRows(stats),
    ...tableRows(stats, modes),
    row(
      'rot (flips / E_CORRUPT / S = P)',
      `${count(stats.rot.runs)} / ${count(stats.rot.detected)} / ${count(stats.rot.healed)}`,
    ),
    row('crash states per kind', kinds.join(', ')),
    ...stats.notes.map((note) => `  note: ${note}`),
    row('oracle steps / invariant checks', `${count(stats.oracle.steps)} / ${count(stats.oracle.invariantChecks)}`),
    row('seconds', stats.seconds.toFixed(2)),
    row('crash states/s', statesPerSecond(stats)),
    row('crash runs/s', Math.round(stats.runs / Math.max(stats.seconds, 1e-6))),
  ].join('\n');
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
