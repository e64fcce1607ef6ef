// The remote section's figures (remote.ts): per server configuration (transport,
// delay filter or not), our cycle's time over nbdcopy's, taken per repetition, with
// both medians, our open, cycle and link calls apart, and the load average beside.
// The headline (remoteCycleVsNbdcopy...) is the cycle as `cowmap serve` runs them, its
// link already up; remoteColdCycleVsNbdcopy... is a process's first cycle: open + cycle
// + close, the link's worker thread starting and connecting inside it.

import type { OursTimes } from './remoteCycle.ts';
import type { Figure } from './report.ts';
import { ratios, summarize } from './stats.ts';
import { describeLoad } from './system.ts';

export type Transport = 'unix' | 'tcp';

/** One server configuration's repetitions. */
export interface ConfigRuns {
  readonly transport: Transport;
  readonly delayMs: number;
  /** open + cycle + close, the link connecting in the cycle (remoteCycle.ts, oursCycle). */
  readonly ours: OursTimes[];
  /** The same cycle with the link already up (remoteCycle.ts, oursWarmCycle). */
  readonly oursWarm: OursTimes[];
  readonly nbdcopySeconds: number[];
  /** The 1-minute load average at the start of each repetition. */
  readonly load: number[];
}

export interface Sizes {
  readonly dirtyBytes: number;
  readonly volumeBytes: number;
}

const median = (values: readonly number[]) => summarize(values).median;
const ms = (seconds: number) => `${(seconds * 1000).toFixed(1)} ms`;

function keyOf(runs: ConfigRuns, warm: boolean): string {
  const delay = runs.delayMs > 0 ? '' : 'NoDelay';
  return `remote${warm ? '' : 'Cold'}CycleVsNbdcopy${delay}${runs.transport === 'tcp' ? 'Tcp' : ''}`;
}

function labelOf(runs: ConfigRuns, sizes: Sizes, warm: boolean): string {
  const where = runs.transport === 'unix' ? 'a Unix socket' : 'TCP 127.0.0.1';
  const delay = runs.delayMs > 0 ? `nbdkit's delay filter at ${runs.delayMs} ms a request` : 'no delay filter';
  const what = warm ? 'the cycle alone, its link already up' : 'open + cycle + close, the link connecting in the cycle';
  return (
    `one cycle of ${(sizes.dirtyBytes / (1 << 20)).toFixed(1)} MiB dirty of a ` +
    `${(sizes.volumeBytes / (1 << 30)).toFixed(2)} GiB volume to nbdkit file over ${where}, ${delay} (${what}), ` +
    'over nbdcopy --flush of the same bytes'
  );
}

/** The median seconds of one kind of link call per repetition (0 when it was not made). */
function callSeconds(series: readonly OursTimes[], name: string): number {
  return median(series.map((times) => times.link.calls[name]?.seconds ?? 0));
}

/** Where our cycle's time went, by link call (medians per repetition). */
function linkText(series: readonly OursTimes[]): string {
  const writes = median(series.map((times) => times.link.writes));
  const parts = ['connect', 'read', 'writeBatch', 'flush'].map((name) => `${name} ${ms(callSeconds(series, name))}`);
  return `link calls: ${parts.join(', ')} (${writes} WRITEs)`;
}

/** Where a cycle's time went: the link's connect and its requests (medians per repetition). */
function whyOf(series: readonly OursTimes[]): string {
  const cycle = median(series.map((times) => times.cycleSeconds));
  const connect = callSeconds(series, 'connect');
  const wire = ['writeBatch', 'flush', 'read'].reduce((sum, name) => sum + callSeconds(series, name), 0);
  return (
    `of ours' ${ms(cycle)} cycle, the link's connect (what was left of its worker thread's load, started at open, ` +
    `then the socket and the handshake) took ${ms(connect)} and the requests (writes, flushes, the control read) ` +
    `${ms(wire)}; see docs/bench.md, "Remote"`
  );
}

const against = 'nbdcopy --flush of a file of the dirty bytes into another export of the same nbdkit';

/** A process's first cycle (open + cycle + close, the link starting inside) over nbdcopy, per repetition; no target. */
export function coldFigure(runs: ConfigRuns, sizes: Sizes): Figure {
  const oursTotal = runs.ours.map((times) => times.totalSeconds);
  const summary = summarize(ratios(oursTotal, runs.nbdcopySeconds));
  const part = (name: 'openSeconds' | 'cycleSeconds' | 'closeSeconds') => ms(median(runs.ours.map((t) => t[name])));
  const copy = median(runs.nbdcopySeconds);
  const mibPerSecond = (seconds: number) => (sizes.dirtyBytes / (1 << 20) / seconds).toFixed(0);
  return {
    key: keyOf(runs, false),
    label: labelOf(runs, sizes, false),
    unit: 'ratio',
    summary,
    against,
    detail:
      `ours ${ms(median(oursTotal))} (open ${part('openSeconds')}, cycle ${part('cycleSeconds')}, close ` +
      `${part('closeSeconds')}; ${mibPerSecond(median(oursTotal))} MiB/s) vs nbdcopy ${ms(copy)} ` +
      `(${mibPerSecond(copy)} MiB/s); ours' ${linkText(runs.ours)}; ${whyOf(runs.ours)}; ${describeLoad(runs.load)}`,
  };
}

/** The headline: the cycle alone, its link already up (as `cowmap serve` runs cycles), over nbdcopy, per repetition. */
export function remoteFigure(runs: ConfigRuns, sizes: Sizes, target: { text: string; atMost: number } | null): Figure {
  const warm = runs.oursWarm.map((times) => times.cycleSeconds);
  const summary = summarize(ratios(warm, runs.nbdcopySeconds));
  const met = target === null ? null : summary.median <= target.atMost;
  return {
    key: keyOf(runs, true),
    label: labelOf(runs, sizes, true),
    unit: 'ratio',
    summary,
    against,
    ...(target === null ? {} : { target: { text: target.text, met: met! } }),
    detail:
      `ours ${ms(median(warm))} vs nbdcopy ${ms(median(runs.nbdcopySeconds))}; ours' ${linkText(runs.oursWarm)}; ` +
      describeLoad(runs.load),
    ...(met === false ? { why: whyOf(runs.oursWarm) } : {}),
  };
}
