// The failpoint sweep: a crash after every durable I/O call of every operation,
// in every situation where the protocol's crash rules (docs/protocol.md, "The
// crash model") say something different, in every crash mode the caller asks
// for. Random sequences reach a failpoint inside an idle write only by luck; the
// sweep reaches each one on purpose.
//
// For each situation and mode, for k = 0, 1, 2, ... until the operation
// completes before its k-th call (bounded by ioCountMax), one run on a fresh
// volume: a short prefix that reaches the situation, the operation with the
// failpoint after its k-th durable call, recover, then the cycle run to its end
// and one more cycle, so that a bit lost in the crash shows up as a region the
// secondary never gets. Every run goes through the oracle (runScenario), which
// judges the recovered state against the outcomes the model allows and records a
// trace; the first failure is saved in failuresDir and returned.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Geometry } from '../model/types.ts';
import type { FaultMode } from './types.ts';
import type { Difference } from './oracle/oracle.ts';
import { boundaryRegions } from './geometry.ts';
import { Prng } from './prng.ts';
import { randomContent } from './regionData.ts';
import { runScenario, scenarioTrace } from './scenario.ts';
import type { ScenarioStep } from './scenario.ts';
import { createsConsistentVolumes } from './sut/systemUnderTest.ts';
import type { CrashingReply, CreateChoice, CrashRequest, SutOp, SystemUnderTest } from './sut/systemUnderTest.ts';
import { ContentBook } from './trace/content.ts';
import { fileSafe } from './fileSafe.ts';

export interface SweepOptions {
  readonly geometry: Geometry;
  readonly modes: readonly FaultMode[];
  readonly seed: number;
  readonly failuresDir: string;
  /** The implementation; called once per run (a kept-running adapter may return the same one). */
  readonly makeSut: () => SystemUnderTest;
  /** Checked between runs: true ends the sweep (the result says how far it got). */
  readonly shouldStop?: () => boolean;
  readonly onProgress?: (text: string) => void;
  /** The largest k tried in one situation and mode (default 64): an operation making more durable calls is not swept past it. */
  readonly ioCountMax?: number;
  /** Only the situations with these names (default: every one of `situations`). */
  readonly situationNames?: readonly string[];
}

export interface SweepResult {
  readonly runs: number;
  readonly steps: number;
  /** Failpoints that fired inside an operation (runs where the operation completed first are not counted). */
  readonly crashPoints: number;
  /** Transition ids taken (statechart ids plus the oracle's `<phase>:crash`). */
  readonly covered: ReadonlySet<string>;
  readonly failure: {
    readonly message: string;
    readonly differences: readonly Difference[];
    readonly tracePath: string;
  } | null;
  /** What was swept, per situation and mode: the crash points that fired, and whether the op completed within ioCountMax. */
  readonly swept: readonly SweptSituation[];
}

export interface SweptSituation {
  readonly situation: string;
  readonly mode: FaultMode;
  readonly regions: readonly number[];
  readonly crashPoints: number;
  /** The operation completed before a failpoint at some k <= ioCountMax: every point inside it was tried. */
  readonly complete: boolean;
}

export const sweepDefaults = { ioCountMax: 64 } as const;

/** The regions one situation uses: `region` is the operation's, `other` a second one, both across the volume. */
export interface Picks {
  readonly region: number;
  readonly other: number;
}

/** Writes with fresh full-region content, from the run's seed. */
type Writer = (region: number) => SutOp;

export interface Situation {
  readonly name: string;
  /** The steps that reach the situation. */
  prefix(picks: Picks, write: Writer): SutOp[];
  /** The operation the failpoint is armed in. */
  operation(picks: Picks, write: Writer): SutOp;
}

const startCycle: SutOp = { type: 'startCycle' };
const completeCycle: SutOp = { type: 'completeCycle' };
const transfer = (region: number): SutOp => ({ type: 'transfer', region });

/** Every situation the sweep covers, in the order it runs them. */
export const situations: readonly Situation[] = [
  { name: 'idle write, first of its region', prefix: () => [], operation: ({ region }, write) => write(region) },
  {
    name: 'idle write, a rewrite',
    prefix: ({ region }, write) => [write(region)],
    operation: ({ region }, write) => write(region),
  },
  {
    name: 'write in a cycle, first of a region in C',
    prefix: ({ region }, write) => [write(region), startCycle],
    operation: ({ region }, write) => write(region),
  },
  {
    name: 'write in a cycle, first of a region not in C',
    prefix: ({ other }, write) => [write(other), startCycle],
    operation: ({ region }, write) => write(region),
  },
  {
    name: 'write in a cycle, second of its region',
    prefix: ({ region }, write) => [write(region), startCycle, write(region)],
    operation: ({ region }, write) => write(region),
  },
  {
    name: 'startCycle with next bits set',
    prefix: ({ region, other }, write) => [write(region), write(other)],
    operation: () => startCycle,
  },
  { name: 'startCycle, empty', prefix: () => [], operation: () => startCycle },
  {
    name: 'transfer from the primary',
    prefix: ({ region, other }, write) => [write(region), write(other), startCycle],
    operation: ({ region }) => transfer(region),
  },
  {
    name: 'transfer from the COW view',
    prefix: ({ region, other }, write) => [write(region), write(other), startCycle, write(region)],
    operation: ({ region }) => transfer(region),
  },
  {
    name: 'transfer, a resend',
    prefix: ({ region }, write) => [write(region), startCycle, transfer(region)],
    operation: ({ region }) => transfer(region),
  },
  {
    name: 'completeCycle',
    // A write during the cycle: its next bit must outlive the completion.
    prefix: ({ region, other }, write) => [write(region), startCycle, write(other), transfer(region)],
    operation: () => completeCycle,
  },
];

/** The regions of the situation at `index`: rotated over the boundary regions so that the sweep as a whole spans the volume. */
export function picksFor(regions: number, index: number, seed: number): Picks {
  const choices = boundaryRegions(regions);
  const start = (index + Math.abs(Math.trunc(seed))) % choices.length;
  const region = choices[start]!;
  // The other region: the farthest boundary from the first (region 0 with the last, ...).
  const other = regions === 1 ? region : region === choices[0] ? choices[choices.length - 1]! : choices[0]!;
  return { region, other };
}

function crashRequest(mode: FaultMode, afterIo: number, seed: number): CrashRequest {
  return { afterIo, mode: mode === 'process' ? 'process' : 'power', seed, torn: mode === 'torn' };
}

/** The cycle run to its end, then one more: each region the run touched is sent (a rejection where its bit is clear is fine). */
function tail(picks: Picks): SutOp[] {
  const regions = [...new Set([picks.region, picks.other])];
  const cycle = [...regions.map(transfer), completeCycle];
  return [...cycle, startCycle, ...cycle];
}

/** Wraps a SUT to see whether the armed operation crashed, and to count the steps sent. */
class ObservedSut implements SystemUnderTest {
  crashedInside: boolean | null = null;
  steps = 0;

  constructor(private readonly sut: SystemUnderTest) {}

  get name(): string {
    return this.sut.name;
  }

  get features() {
    return this.sut.features;
  }

  create(geometry: Geometry, choice?: CreateChoice) {
    return this.sut.create(geometry, choice);
  }

  apply(op: SutOp) {
    this.steps++;
    return this.sut.apply(op);
  }

  async applyCrashing(op: SutOp, crash: CrashRequest): Promise<CrashingReply> {
    this.steps++;
    const result = await this.sut.applyCrashing(op, crash);
    this.crashedInside = result.crashed;
    return result;
  }

  state() {
    return this.sut.state();
  }

  crash() {
    this.steps++;
    return this.sut.crash();
  }

  recover() {
    this.steps++;
    return this.sut.recover();
  }

  close() {
    return this.sut.close();
  }
}

/** The situations asked for, checked: an unknown name is a RangeError that lists the known ones. */
function checkSituationNames(names: readonly string[] | undefined): void {
  const unknown = (names ?? []).filter((name) => !situations.some((situation) => situation.name === name));
  if (unknown.length > 0)
    throw new RangeError(
      `failpoint sweep: no situation named ${unknown.map((name) => `'${name}'`).join(', ')} ` +
        `(known: ${situations.map((situation) => situation.name).join('; ')})`,
    );
}

/** One run of a situation: where it crashes, and its seed. */
interface SweepRun {
  readonly situation: Situation;
  readonly picks: Picks;
  readonly mode: FaultMode;
  readonly afterIo: number;
  readonly runSeed: number;
}

/** The run's scenario: the prefix, the operation with its failpoint, recover, then the cycle's end and one more. */
function sweepScenario(run: SweepRun, geometry: Geometry): ScenarioStep[] {
  const { situation, picks, mode, afterIo, runSeed } = run;
  const prng = new Prng(runSeed);
  const write: Writer = (region) => ({
    type: 'write',
    region,
    data: randomContent(prng.nextUint32(), geometry.regionSize),
  });
  return [
    ...situation.prefix(picks, write).map((op): ScenarioStep => ({ kind: 'op', op })),
    { kind: 'crashInside', op: situation.operation(picks, write), crash: crashRequest(mode, afterIo, runSeed) },
    { kind: 'recover' },
    ...tail(picks).map((op): ScenarioStep => ({ kind: 'op', op })),
  ];
}

/**
 * A failing run, saved as a trace in failuresDir; run on volumes that keep a consistent
 * image (the conformance level consistent), the trace needs the feature, so that its
 * replay compares D again.
 */
function saveSweepFailure(
  options: SweepOptions,
  run: SweepRun,
  sut: SystemUnderTest,
  scenario: Awaited<ReturnType<typeof runScenario>>,
): NonNullable<SweepResult['failure']> {
  const { geometry } = options;
  const { situation, picks, mode, afterIo, runSeed } = run;
  const failure = scenario.failure!;
  const title = `failpoint sweep: ${situation.name}, ${mode} crash after io ${afterIo}`;
  const comments = [
    `${title}, on ${sut.name}`,
    `regions ${picks.region} and ${picks.other} of ${geometry.regions} x ${geometry.regionSize} B, seed ${runSeed}`,
    `failed at step ${failure.stepIndex + 1}: ${failure.message.split('\n')[0]}`,
  ];
  mkdirSync(options.failuresDir, { recursive: true });
  const tracePath = join(
    options.failuresDir,
    `failpoint-${fileSafe(situation.name)}-${mode}-io${afterIo}-${runSeed}.jsonl`,
  );
  const features = createsConsistentVolumes(sut) ? ['consistent'] : [];
  writeFileSync(tracePath, scenarioTrace(geometry, scenario.records, title, comments, runSeed, features));
  return { message: `${title}: ${failure.message}`, differences: failure.differences, tracePath };
}

export async function runFailpointSweep(options: SweepOptions): Promise<SweepResult> {
  const { geometry } = options;
  const ioCountMax = options.ioCountMax ?? sweepDefaults.ioCountMax;
  const covered = new Set<string>();
  const totals = { runs: 0, steps: 0, crashPoints: 0 };
  const swept: SweptSituation[] = [];
  const result = (failure: SweepResult['failure']): SweepResult => ({ ...totals, covered, failure, swept });

  checkSituationNames(options.situationNames);
  for (const [index, situation] of situations.entries()) {
    if (options.situationNames !== undefined && !options.situationNames.includes(situation.name)) continue;
    const picks = picksFor(geometry.regions, index, options.seed);
    for (const mode of options.modes) {
      const entry = {
        situation: situation.name,
        mode,
        regions: [...new Set([picks.region, picks.other])],
        crashPoints: 0,
        complete: false,
      };
      swept.push(entry);
      for (let afterIo = 0; afterIo <= ioCountMax; afterIo++) {
        if (options.shouldStop?.() === true) return result(null);
        const runSeed =
          (options.seed + index * 1_000_003 + afterIo * 7919 + options.modes.indexOf(mode) * 104_729) >>> 0;
        const run: SweepRun = { situation, picks, mode, afterIo, runSeed };
        const made = options.makeSut();
        const sut = new ObservedSut(made);
        options.onProgress?.(`failpoint sweep: ${situation.name}, ${mode}, crash after io ${afterIo}`);
        const scenario = await runScenario(
          sut,
          geometry,
          sweepScenario(run, geometry),
          new ContentBook(geometry.regionSize),
        );
        totals.runs++;
        totals.steps += sut.steps;
        for (const id of scenario.covered) covered.add(id);
        if (scenario.failure !== null) return result(saveSweepFailure(options, run, made, scenario));
        if (sut.crashedInside === true) {
          totals.crashPoints++;
          entry.crashPoints++;
        } else {
          // The operation completed before its k-th call: every failpoint inside it was swept.
          entry.complete = sut.crashedInside === false;
          break;
        }
      }
    }
  }
  return result(null);
}
