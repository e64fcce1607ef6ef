// Which checks each level runs, in which order, with what crashes: pure data
// and pure selection, so that the console, the reports and `--check` share one
// list of names.
//
//   rules      the traces without crashes (FIG. 4 among them), the protocol's own
//              rules (docs/adapter.md), path tests of the statechart mapped onto each
//              geometry, fast-check sequences on each geometry with full-region
//              data, and a long history (>= 300 operations, >= 10 cycles)
//   crash      the same with kills between requests (traces, path tests,
//              fast-check, long history)
//   failpoint  crashes after the k-th I/O call inside requests: the traces with
//              failpoints, the failpoint sweep, fast-check, long history
//   power      the same with unsynced writes lost, and torn where offered
//   consistent (feature `consistent`) volumes whose secondary keeps a consistent
//              image D, reported and compared with the model's after every step
//              (INV-DR, docs/protocol.md section 10): the traces that need it
//              (FIG. 4 with D among them), fast-check sequences with kills and,
//              with `failpoint`, crashes inside requests, the failpoint sweep of
//              transfer and completeCycle, and a long history
//
// A check is named `<level>/<kind>` (`crash/fast-check`), stable across runs and
// seeds: CI history and `--check` rely on it.

import type { FaultMode } from '../types.ts';
import type { Feature } from '../sut/systemUnderTest.ts';
import type { Trace } from '../trace/trace.ts';

export const levels = ['rules', 'crash', 'failpoint', 'power', 'consistent'] as const;
export type Level = (typeof levels)[number];

/**
 * The levels of an optional feature beside the crash levels: a full run (up to
 * power, the default) ends with them, and an implementation without the feature
 * is told the level is not offered, which is no failure.
 */
export const optionalLevels: readonly Level[] = ['consistent'];

export const checkKinds = ['traces', 'protocol', 'paths', 'sweep', 'fast-check', 'history'] as const;
export type CheckKind = (typeof checkKinds)[number];

/** Traces and protocol checks are cheap and run whole; the others stop at their deadline. */
export function isBounded(kind: CheckKind): boolean {
  return kind !== 'traces' && kind !== 'protocol';
}

export interface CheckSpec {
  /** `<level>/<kind>`. */
  readonly id: string;
  readonly level: Level;
  readonly kind: CheckKind;
  /** How the console and JUnit name it. */
  readonly title: string;
  /** Kills between requests. */
  readonly crashBetween: boolean;
  /** Crashes inside requests (resolved against the features: torn only where offered). */
  readonly crashModes: readonly FaultMode[];
}

/** What a level needs of an implementation (hello's features). */
export const levelNeeds: Readonly<Record<Level, readonly Feature[]>> = {
  rules: [],
  crash: [],
  failpoint: ['failpoint'],
  power: ['failpoint', 'power-loss'],
  consistent: ['consistent'],
};

const levelKinds: Readonly<Record<Level, readonly CheckKind[]>> = {
  rules: ['traces', 'protocol', 'paths', 'fast-check', 'history'],
  crash: ['traces', 'paths', 'fast-check', 'history'],
  failpoint: ['traces', 'sweep', 'fast-check', 'history'],
  power: ['traces', 'sweep', 'fast-check', 'history'],
  consistent: ['traces', 'sweep', 'fast-check', 'history'],
};

const kindTitles: Readonly<Record<CheckKind, string>> = {
  traces: 'traces',
  protocol: 'protocol rules',
  paths: 'path tests',
  sweep: 'failpoint sweep',
  'fast-check': 'fast-check sequences',
  history: 'long histories',
};

const levelSuffixes: Readonly<Record<Level, string>> = {
  rules: 'without crashes',
  crash: 'with kills',
  failpoint: 'with failpoints',
  power: 'with power loss',
  consistent: 'with the consistent image',
};

function crashModesOf(level: Level, features: ReadonlySet<Feature>): FaultMode[] {
  if (level === 'failpoint') return ['process'];
  if (level === 'consistent') return features.has('failpoint') ? ['process'] : [];
  if (level === 'power') return features.has('torn') ? ['power', 'torn'] : ['power'];
  return [];
}

/** Every check of a level, in the order they run (cheap ones first). */
export function levelChecks(level: Level, features: ReadonlySet<Feature>): CheckSpec[] {
  // The consistent level sweeps failpoints only where they are offered; kills it has always.
  const kinds = levelKinds[level].filter(
    (kind) => kind !== 'sweep' || level !== 'consistent' || features.has('failpoint'),
  );
  return kinds.map((kind) => ({
    id: `${level}/${kind}`,
    level,
    kind,
    title: kind === 'protocol' ? kindTitles[kind] : `${kindTitles[kind]} ${levelSuffixes[level]}`,
    crashBetween: level !== 'rules',
    crashModes: crashModesOf(level, features),
  }));
}

/** Every check id there is, for `--check` and its usage message. */
export function allCheckIds(): string[] {
  return levels.flatMap((level) => levelKinds[level].map((kind) => `${level}/${kind}`));
}

/**
 * Whether `--check NAME` selects a check: NAME is a check id (`crash/paths`) or a
 * kind (`paths`: that kind in every level run).
 */
export function checkSelected(spec: CheckSpec, names: readonly string[]): boolean {
  return names.length === 0 || names.some((name) => name === spec.id || name === spec.kind);
}

/** Whether every name given to `--check` names a check or a kind. */
export function unknownCheckNames(names: readonly string[]): string[] {
  const known = new Set<string>([...allCheckIds(), ...checkKinds]);
  return names.filter((name) => !known.has(name));
}

/**
 * The levels a run takes: `only` one, or every one `upTo` it (the default, up to
 * power); a run up to power, the whole crash chain, ends with the optional levels.
 */
export function selectedLevels(level: Level, mode: 'only' | 'upTo'): Level[] {
  if (mode === 'only') return [level];
  const chain = levels.slice(0, levels.indexOf(level) + 1);
  return level === 'power' ? [...chain, ...optionalLevels.filter((optional) => !chain.includes(optional))] : chain;
}

/** The level a trace needs: what its crashes ask of an implementation. */
export function traceLevel(trace: Trace): Level {
  let level: Level = 'rules';
  for (const step of trace.steps) {
    if (step.kind !== 'op') continue;
    const needs: Level =
      step.crashAt?.mode === 'power'
        ? 'power'
        : step.crashAt !== undefined
          ? 'failpoint'
          : step.op === 'crash'
            ? 'crash'
            : 'rules';
    if (levels.indexOf(needs) > levels.indexOf(level)) level = needs;
  }
  return level;
}

/** What a run does with one level: the checks it runs, or why it runs none. */
export interface LevelPlan {
  readonly level: Level;
  readonly specs: readonly CheckSpec[];
  /** Why the level does not run (null: it runs). */
  readonly skipped: { readonly status: 'skipped' | 'not run'; readonly reason: string } | null;
}

/** The plan of every level a run takes (selectedLevels), against the features offered and the checks selected. */
export function planLevels(
  level: Level,
  mode: 'only' | 'upTo',
  features: ReadonlySet<Feature>,
  checks: readonly string[],
): LevelPlan[] {
  return selectedLevels(level, mode).map((selected): LevelPlan => {
    const missing = levelNeeds[selected].filter((feature) => !features.has(feature));
    if (missing.length > 0) {
      const optional = optionalLevels.includes(selected) ? ', an optional feature' : '';
      const reason = `the implementation does not offer ${missing.join(', ')}${optional}`;
      return { level: selected, specs: [], skipped: { status: 'skipped', reason } };
    }
    const specs = levelChecks(selected, features).filter((spec) => checkSelected(spec, checks));
    if (specs.length === 0) {
      const reason = 'no check of this level selected (--check)';
      return { level: selected, specs, skipped: { status: 'not run', reason } };
    }
    return { level: selected, specs, skipped: null };
  });
}

/** Whether a trace needs the consistent image (its header's `features`, docs/traces.md). */
export function traceNeedsConsistent(trace: Trace): boolean {
  return trace.header.features?.includes('consistent') === true;
}

/**
 * Whether the trace check of `level` runs `trace`: a trace of the consistent image
 * runs at the level consistent, where the features its crashes need are offered;
 * every other trace at the level its crashes need (torn ones where `torn` is offered).
 */
export function traceRunsAt(trace: Trace, level: Level, features: ReadonlySet<Feature>): boolean {
  const needed = traceLevel(trace);
  const tornOk = features.has('torn') || !tracesTorn(trace);
  if (traceNeedsConsistent(trace)) {
    return level === 'consistent' && levelNeeds[needed].every((feature) => features.has(feature)) && tornOk;
  }
  return needed === level && (level !== 'power' || tornOk);
}

/** Whether a trace tears writes (it runs only where `torn` is offered). */
export function tracesTorn(trace: Trace): boolean {
  return trace.steps.some((step) => step.kind === 'op' && step.crashAt?.torn === true);
}
