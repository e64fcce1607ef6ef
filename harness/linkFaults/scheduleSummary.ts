// The fault schedules' counts in a few lines: schedules run, faults injected per
// kind, retries, resends, cycles completed (what faultSchedules.test.ts prints).

import type { HistoryOutcome } from './faultSchedules.ts';
import { faultKinds } from './schedule.ts';

export interface ScheduleTotals {
  schedules: number;
  failed: number;
  faults: Record<string, number>;
  /** runCycle calls that ended in a link error (the history retried). */
  linkErrors: number;
  lostSent: number;
  /** Connections past the first of each history: the replica's reconnects. */
  reconnects: number;
  resentWrites: number;
  dataWrites: number;
  cyclesCompleted: number;
  olderImagesRefused: number;
  consistentAhead: number;
  /** The far side died by itself and was started again (farSideCrashes of the proxy). */
  farSideCrashes: number;
}

export function totalsOf(outcomes: readonly HistoryOutcome[]): ScheduleTotals {
  const totals: ScheduleTotals = {
    schedules: outcomes.length,
    failed: 0,
    faults: Object.fromEntries(faultKinds.map((kind) => [kind, 0])),
    linkErrors: 0,
    lostSent: 0,
    reconnects: 0,
    resentWrites: 0,
    dataWrites: 0,
    cyclesCompleted: 0,
    olderImagesRefused: 0,
    consistentAhead: 0,
    farSideCrashes: 0,
  };
  for (const outcome of outcomes) {
    if (outcome.failure !== null) totals.failed++;
    totals.linkErrors += outcome.linkErrors;
    totals.lostSent += outcome.lostSent;
    totals.cyclesCompleted += outcome.cyclesCompleted;
    if (outcome.olderImageRefused) totals.olderImagesRefused++;
    totals.consistentAhead += outcome.consistentAhead;
    const counts = outcome.counts;
    if (counts === null) continue;
    for (const kind of faultKinds) totals.faults[kind]! += counts.faults[kind];
    totals.reconnects += Math.max(0, counts.connections - 1);
    totals.resentWrites += counts.resentWrites;
    totals.dataWrites += counts.dataWrites;
    totals.farSideCrashes += counts.farSideCrashes;
  }
  return totals;
}

export function describeOutcomes(outcomes: readonly HistoryOutcome[]): string {
  const totals = totalsOf(outcomes);
  const farKinds = [...new Set(outcomes.map((outcome) => outcome.farKind))].join(', ');
  const faults = Object.entries(totals.faults)
    .filter(([, count]) => count > 0)
    .map(([kind, count]) => `${kind} ${count}`)
    .join(', ');
  return [
    `# ${farKinds}: ${totals.schedules} schedules (${totals.failed} failed), ${totals.cyclesCompleted} cycles completed`,
    `#   faults injected: ${faults || 'none'}`,
    `#   retries: ${totals.linkErrors} cycle attempts ended in a link error (${totals.lostSent} lostSent), ` +
      `${totals.reconnects} reconnects; resends: ${totals.resentWrites} of ${totals.dataWrites} data WRITEs`,
    `#   older images refused (E_CORRUPT): ${totals.olderImagesRefused}; ` +
      `consistent image of the running cycle (complete taken, not confirmed): ${totals.consistentAhead}; ` +
      `far side crashes by itself (started again): ${totals.farSideCrashes}`,
    '',
  ].join('\n');
}
