// A failure of the crash exploration as a v1 trace (docs/traces.md), saved where
// the exploration was told: the failing case rerun from scratch, without any
// restore, so that the trace is checked to reproduce; the power or torn subset as
// a seed of the crash layer's coins when one draws it, else in a comment. A case
// that trace format v1 cannot say (a crash inside create or recovery, rot) is
// saved as text, in words. See the head of harness/crashExploration.ts.

import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isCowmapError } from '../../impl/errors.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { judge } from '../../model/rules.ts';
import type { CrashRequest, SutOp } from '../sut.ts';
import type { ExplorationFailure, ExplorationOptions, Explorer, FoundFailure } from '../crashExploration.ts';
import { describeOp, explorationDefaults, modelOpOf, shortenLabels } from '../crashExploration.ts';
import { OracleFailure } from '../oracle.ts';
import { runScenario, scenarioTrace } from '../scenario.ts';
import type { ScenarioStep } from '../scenario.ts';
import type { TraceRecord } from '../trace/writer.ts';
import {
  choiceBitCount,
  describeBits,
  describeTear,
  drawBits,
  dropEverything,
  explicitChoices,
  powerChoices,
  seedFor,
} from './choices.ts';
import type { PowerChoices } from '../crashStorage.ts';
import { errorWithTrace, ExplorationSut } from './explorationSut.ts';
import type { BetweenCrash } from './explorationSut.ts';

/**
 * A failure that trace format v1 cannot say (a crash inside create or inside
 * recovery, rot): the steps in words, saved as a text file next to the traces.
 */
function specialFailure(
  explorer: Explorer,
  found: FoundFailure,
  special: string,
  options: ExplorationOptions,
): ExplorationFailure {
  const volumeName = options.volumeName ?? 'the reference implementation';
  const steps = found.steps.map((step) =>
    step.kind === 'op'
      ? explorer.describe(step.op)
      : step.kind === 'crashInside'
        ? `${explorer.describe(step.op)} crashed after io ${step.crash.afterIo}`
        : step.kind,
  );
  const lines = [
    `# Found by the crash exploration (harness/crashExploration.ts) on ${volumeName}, geometry ${geometry(explorer)}.`,
    `# Not expressible in trace format v1; the case in words:`,
    `#   ${shortenLabels(special)}`,
    `#   prefix: ${shortenLabels(explorer.describePath(found.node.path))}`,
    `#   steps after it: ${shortenLabels(steps.join(', ')) || '(none)'}`,
    `# It failed: ${shortenLabels(found.error.message)}`.split('\n').join('\n# '),
  ];
  const text = `${lines.join('\n')}\n`;
  let file: string | null = null;
  const dir = options.failuresDir === undefined ? explorationDefaults.failuresDir : options.failuresDir;
  if (dir !== null) {
    mkdirSync(dir, { recursive: true });
    const hash = createHash('sha256').update(text).digest('hex').slice(0, 8);
    file = join(dir, `crash-${slug(volumeName)}-${slug(special)}-${hash}.txt`);
    writeFileSync(file, text);
  }
  return {
    message: found.error.message,
    differences: found.error.differences,
    description: special,
    trace: text,
    file,
    reproduced: false,
    exact: false,
    notReplayable: special,
  };
}

function geometry(explorer: Explorer): string {
  return `${explorer.geometry.regions} regions of ${explorer.geometry.regionSize} bytes`;
}

/** Any error as a failure: an OracleFailure as it is; anything else the implementation threw, with its trace. */
export function asFailure(error: unknown, where: string): OracleFailure {
  if (error instanceof OracleFailure) return error;
  if (isCowmapError(error))
    return new OracleFailure('sut', `${where}: an unexpected ${error.code} escaped: ${errorWithTrace(error)}`);
  return new OracleFailure('sut', `${where}: the implementation threw ${errorWithTrace(error)}`);
}

function slug(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 40) || 'x'
  );
}

/** One way to write the failing case as a v1 trace, and what the rerun needs to match it. */
interface TraceCandidate {
  readonly steps: readonly ScenarioStep[];
  /** Explicit choices for the rerun's crash inside an operation (when no seed draws them). */
  readonly crashChoices: PowerChoices;
  readonly betweenCrash: BetweenCrash;
  /** A `#` comment put before the crash record. */
  readonly comment: string | null;
  /** Whether the trace names exactly the crash the exploration made. */
  readonly exact: boolean;
}

/** Prefers operations whose crash outcomes are narrow (the state before or after) over writes. */
function nextOpOrder(op: SutOp): number {
  return op.type === 'startCycle' || op.type === 'completeCycle' ? 0 : op.type === 'transfer' ? 1 : 2;
}

function traceCandidates(explorer: Explorer, found: FoundFailure, seedSearchMax: number): TraceCandidate[] {
  const prefix = found.node.path.map((op): ScenarioStep => ({ kind: 'op', op }));
  const choice = found.choice;
  const process: BetweenCrash = { mode: 'process', choices: {} };
  if (choice === null || choice.mode === 'process') {
    const powerLoss = found.powerLoss;
    if (powerLoss === undefined)
      return [
        { steps: [...prefix, ...found.steps], crashChoices: {}, betweenCrash: process, comment: null, exact: true },
      ];
    const how =
      powerLoss.seed === null
        ? `must keep nothing unsynced; no seed in 0..${seedSearchMax} draws that with the crash layer's coins, so the seed given does NOT reproduce it exactly`
        : `keeps nothing unsynced (seed ${powerLoss.seed} draws that with the crash layer's coins)`;
    const comment = `the process crash below leaves unsynced writes in the page cache, which recovery inherits; after the recovery and a finished cycle, the power crash inside startCycle (crashAfterIo 0) ${how}.`;
    return [
      {
        steps: [...prefix, ...found.steps],
        crashChoices: powerLoss.seed === null ? dropEverything : {},
        betweenCrash: process,
        comment,
        exact: powerLoss.seed !== null,
      },
    ];
  }
  const torn = choice.mode === 'torn';
  const shape = found.shape ?? { writes: [], truncates: 0, namespace: 0 };
  // The choice as a seed of the crash layer's coins, when one draws it.
  let seed = choice.seed;
  let seedExact = true;
  let kept: string;
  let explicit: PowerChoices = {};
  if (choice.tear !== undefined) {
    seedExact = false;
    explicit = powerChoices(choice, shape);
    kept = `${describeTear(choice.tear, shape)}. A tear inside a sector is not drawn by any seed and trace format v1 cannot name it, so the seed given does NOT reproduce it exactly`;
  } else if (choice.bits !== null) {
    kept = `this subset of the data unsynced at the crash: ${describeBits(choice.bits, shape, torn)}`;
    const match = seedFor(choice.bits, seedSearchMax);
    if (match === null) {
      seedExact = false;
      explicit = explicitChoices(shape, torn, choice.bits);
      kept += `. No seed in 0..${seedSearchMax} draws it with the crash layer's coins and trace format v1 cannot name a subset, so the seed given does NOT reproduce it exactly`;
    } else {
      seed = match;
      kept += `; seed ${match} draws exactly this subset with the crash layer's coins`;
    }
  } else {
    kept = `what the crash layer's coins for seed ${seed} drew (a sampled crash point): ${describeBits(drawBits(seed, choiceBitCount(shape, torn)), shape, torn)}`;
  }
  const mode = `${choice.mode === 'torn' ? 'torn power' : 'power'} crash`;
  if (found.op !== null) {
    const steps = [
      ...prefix,
      ...found.steps.map((step) => (step.kind === 'crashInside' ? { ...step, crash: { ...step.crash, seed } } : step)),
    ];
    return [
      {
        steps,
        crashChoices: explicit,
        betweenCrash: process,
        comment: `the ${mode} below keeps ${kept}.`,
        exact: seedExact,
      },
    ];
  }
  // A power crash between operations: v1 has only process crashes there. The same
  // crash is the next operation crashed before its first durable call (crashAfterIo
  // 0): nothing more is unsynced then, and the coins fall the same way.
  const candidates: TraceCandidate[] = [];
  const after = found.steps.slice(1);
  const accepted = explorer.ops
    .filter((op) => judge(found.node.model, modelOpOf(op, explorer.book)) === null)
    .sort((a, b) => nextOpOrder(a) - nextOpOrder(b));
  for (const op of accepted) {
    const crash: CrashRequest = { afterIo: 0, mode: 'power', seed, torn };
    candidates.push({
      steps: [...prefix, { kind: 'crashInside', op, crash }, ...after],
      crashChoices: explicit,
      betweenCrash: process,
      comment: `found as a ${mode} BETWEEN operations (after the last one answered), which trace format v1 cannot say; written as the next operation crashed before its first durable I/O call (crashAfterIo 0), with the same unsynced data. It keeps ${kept}.`,
      exact: seedExact,
    });
  }
  candidates.push({
    steps: [...prefix, ...found.steps],
    crashChoices: {},
    betweenCrash: { mode: 'power', choices: seedExact ? { seed, torn } : { seed, torn, ...explicit } },
    comment: `found as a ${mode} BETWEEN operations, which trace format v1 cannot say: the 'crash' below replays as a process crash, and does not show the failure. The exploration's crash kept ${kept}.`,
    exact: false,
  });
  return candidates;
}

export async function traceOfFailure(
  explorer: Explorer,
  found: FoundFailure,
  options: ExplorationOptions,
): Promise<ExplorationFailure> {
  const { book, geometry, names } = explorer;
  const volumeName = options.volumeName ?? 'the reference implementation';
  const choice = found.choice;
  if (found.special !== undefined) return specialFailure(explorer, found, found.special, options);
  // Rerun from scratch, no restore: the prefix, then the crash, recovery and finishing steps as found.
  let chosen: { candidate: TraceCandidate; result: Awaited<ReturnType<typeof runScenario>> } | null = null;
  for (const candidate of traceCandidates(
    explorer,
    found,
    options.seedSearchMax ?? explorationDefaults.seedSearchMax,
  )) {
    const sut = new ExplorationSut(
      volumeName,
      options.volumeClass ?? ReplicatedVolume,
      candidate.crashChoices,
      candidate.betweenCrash,
    );
    const result = await runScenario(sut, geometry, candidate.steps, book);
    if (chosen === null || (chosen.result.failure === null && result.failure !== null)) chosen = { candidate, result };
    if (result.failure !== null) break;
  }
  const { candidate, result } = chosen!;
  const records: TraceRecord[] = [...result.records];
  if (candidate.comment !== null)
    records.splice(Math.min(found.node.path.length, records.length), 0, { comment: shortenLabels(candidate.comment) });
  const what =
    found.op !== null
      ? `${describeOp(found.op, book, names)} crashed after io ${found.crashAfterIo} (${choice?.mode ?? 'process'})`
      : choice !== null
        ? `a ${choice.mode} crash between operations`
        : `${found.plainOp === null ? 'an operation' : describeOp(found.plainOp, book, names)} (no crash)`;
  const powerLoss = found.powerLoss === undefined ? '' : '; recovered, finished the cycle, then lost power';
  const description = `${what} after ${explorer.describePath(found.node.path)}${powerLoss}`;
  const header = [
    `Found by the bounded crash exploration (harness/crashExploration.ts) on ${volumeName}: ${description}.`,
    `It failed: ${shortenLabels(found.error.message.split('\n')[0]!)}`,
    result.failure === null
      ? 'WARNING: rerun from scratch, these steps did NOT fail (the exploration restores saved prefix states; see its report).'
      : `Rerun from scratch, it fails at step ${result.failure.stepIndex + 1}: ${shortenLabels(result.failure.message.split('\n')[0]!)}`,
  ];
  const trace = scenarioTrace(geometry, records, `crash exploration: ${found.error.kind} on ${volumeName}`, header);
  let file: string | null = null;
  const dir = options.failuresDir === undefined ? explorationDefaults.failuresDir : options.failuresDir;
  if (dir !== null) {
    mkdirSync(dir, { recursive: true });
    const hash = createHash('sha256').update(trace).digest('hex').slice(0, 8);
    const crashed =
      found.op !== null
        ? `${found.op.type}-io${found.crashAfterIo}-${choice?.mode ?? 'process'}`
        : choice !== null
          ? `between-${choice.mode}`
          : `${found.plainOp?.type ?? 'op'}-nocrash`;
    const where = found.powerLoss === undefined ? crashed : `${crashed}-then-power`;
    file = join(dir, `crash-${slug(options.volumeName ?? 'reference')}-${slug(where)}-${hash}.jsonl`);
    writeFileSync(file, trace);
  }
  return {
    message: found.error.message,
    differences: found.error.differences,
    description,
    trace,
    file,
    reproduced: result.failure !== null,
    exact: candidate.exact,
  };
}
