// The ways to write a failing case as a v1 trace (docs/traces.md), best first:
// the crash the exploration made, with its power or torn subset as a seed of the
// crash layer's coins when one draws it (else the subset in a `#` comment, and
// explicit choices for the rerun); a power crash between operations, which v1
// cannot say, as the next operation crashed before its first durable call, and as
// a last resort the process crash v1 can say. failureTrace.ts reruns them in turn.

import { judge } from '../../model/rules.ts';
import type { PowerChoices } from '../crash/powerChoices.ts';
import type { ScenarioStep } from '../scenario.ts';
import type { CrashRequest, SutOp } from '../sut/systemUnderTest.ts';
import { modelOpOf } from '../sut/systemUnderTest.ts';
import type { BetweenCrash, ChoiceShape } from '../sut/volumeSutOptions.ts';
import type { Choice } from './choices.ts';
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
import type { Explorer } from './explorer.ts';
import type { FoundFailure, PowerLossAfterRecovery } from './found.ts';

/** One way to write the failing case as a v1 trace, and what the rerun needs to match it. */
export interface TraceCandidate {
  readonly steps: readonly ScenarioStep[];
  /** Explicit choices for the rerun's crash inside an operation (when no seed draws them). */
  readonly crashChoices: PowerChoices;
  readonly betweenCrash: BetweenCrash;
  /** A `#` comment put before the crash record. */
  readonly comment: string | null;
  /** Whether the trace names exactly the crash the exploration made. */
  readonly exact: boolean;
}

const processCrash: BetweenCrash = { mode: 'process', choices: {} };

/** Prefers operations whose crash outcomes are narrow (the state before or after) over writes. */
function nextOpOrder(op: SutOp): number {
  return op.type === 'startCycle' || op.type === 'completeCycle' ? 0 : op.type === 'transfer' ? 1 : 2;
}

/** A power or torn choice as a trace can say it: the seed, whether it draws the choice exactly, what it keeps. */
interface SaidChoice {
  readonly seed: number;
  readonly exact: boolean;
  /** What the crash keeps, in words. */
  readonly kept: string;
  /** Explicit choices for the rerun when no seed draws it. */
  readonly explicit: PowerChoices;
}

/** The choice as a seed of the crash layer's coins, when one draws it. */
function sayChoice(choice: Choice, shape: ChoiceShape, seedSearchMax: number): SaidChoice {
  const torn = choice.mode === 'torn';
  const notExactly = 'so the seed given does NOT reproduce it exactly';
  if (choice.tear !== undefined) {
    const kept = `${describeTear(choice.tear, shape)}. A tear inside a sector is not drawn by any seed and trace format v1`;
    return {
      seed: choice.seed,
      exact: false,
      kept: `${kept} cannot name it, ${notExactly}`,
      explicit: powerChoices(choice, shape),
    };
  }
  if (choice.bits === null) {
    const drawn = describeBits(drawBits(choice.seed, choiceBitCount(shape, torn)), shape, torn);
    const kept = `what the crash layer's coins for seed ${choice.seed} drew (a sampled crash point): ${drawn}`;
    return { seed: choice.seed, exact: true, kept, explicit: {} };
  }
  const kept = `this subset of the data unsynced at the crash: ${describeBits(choice.bits, shape, torn)}`;
  const match = seedFor(choice.bits, seedSearchMax);
  if (match !== null)
    return {
      seed: match,
      exact: true,
      kept: `${kept}; seed ${match} draws exactly this subset with the crash layer's coins`,
      explicit: {},
    };
  const none = `No seed in 0..${seedSearchMax} draws it with the crash layer's coins and trace format v1 cannot name a subset`;
  return {
    seed: choice.seed,
    exact: false,
    kept: `${kept}. ${none}, ${notExactly}`,
    explicit: explicitChoices(shape, torn, choice.bits),
  };
}

/** A process crash (or none): its steps as found, and the power loss after its recovery, when there was one. */
function processCandidate(
  steps: ScenarioStep[],
  powerLoss: PowerLossAfterRecovery | undefined,
  seedSearchMax: number,
): TraceCandidate {
  if (powerLoss === undefined)
    return { steps, crashChoices: {}, betweenCrash: processCrash, comment: null, exact: true };
  const how =
    powerLoss.seed === null
      ? `must keep nothing unsynced; no seed in 0..${seedSearchMax} draws that with the crash layer's coins, ` +
        'so the seed given does NOT reproduce it exactly'
      : `keeps nothing unsynced (seed ${powerLoss.seed} draws that with the crash layer's coins)`;
  const comment =
    'the process crash below leaves unsynced writes in the page cache, which recovery inherits; after the ' +
    `recovery and a finished cycle, the power crash inside startCycle (crashAfterIo 0) ${how}.`;
  return {
    steps,
    crashChoices: powerLoss.seed === null ? dropEverything : {},
    betweenCrash: processCrash,
    comment,
    exact: powerLoss.seed !== null,
  };
}

/**
 * A power crash between operations: v1 has only process crashes there. The same
 * crash is the next operation crashed before its first durable call (crashAfterIo
 * 0): nothing more is unsynced then, and the coins fall the same way. Last, the
 * process crash v1 can say, which does not show the failure.
 */
function betweenCandidates(explorer: Explorer, found: FoundFailure, said: SaidChoice, torn: boolean): TraceCandidate[] {
  const prefix = found.node.path.map((op): ScenarioStep => ({ kind: 'op', op }));
  const mode = `${torn ? 'torn power' : 'power'} crash`;
  const after = found.steps.slice(1);
  const accepted = explorer.ops
    .filter((op) => judge(found.node.model, modelOpOf(op, explorer.book)) === null)
    .sort((a, b) => nextOpOrder(a) - nextOpOrder(b));
  const candidates = accepted.map((op): TraceCandidate => {
    const crash: CrashRequest = { afterIo: 0, mode: 'power', seed: said.seed, torn };
    return {
      steps: [...prefix, { kind: 'crashInside', op, crash }, ...after],
      crashChoices: said.explicit,
      betweenCrash: processCrash,
      comment:
        `found as a ${mode} BETWEEN operations (after the last one answered), which trace format v1 cannot say; ` +
        'written as the next operation crashed before its first durable I/O call (crashAfterIo 0), with the same ' +
        `unsynced data. It keeps ${said.kept}.`,
      exact: said.exact,
    };
  });
  const seeded = { seed: said.seed, torn };
  candidates.push({
    steps: [...prefix, ...found.steps],
    crashChoices: {},
    betweenCrash: { mode: 'power', choices: said.exact ? seeded : { ...seeded, ...said.explicit } },
    comment:
      `found as a ${mode} BETWEEN operations, which trace format v1 cannot say: the 'crash' below replays as a ` +
      `process crash, and does not show the failure. The exploration's crash kept ${said.kept}.`,
    exact: false,
  });
  return candidates;
}

/** The ways to write `found` as a v1 trace, best first. */
export function traceCandidates(explorer: Explorer, found: FoundFailure, seedSearchMax: number): TraceCandidate[] {
  const prefix = found.node.path.map((op): ScenarioStep => ({ kind: 'op', op }));
  const choice = found.choice;
  if (choice === null || choice.mode === 'process')
    return [processCandidate([...prefix, ...found.steps], found.powerLoss, seedSearchMax)];
  const torn = choice.mode === 'torn';
  const said = sayChoice(choice, found.shape ?? { writes: [], truncates: 0, namespace: 0 }, seedSearchMax);
  if (found.op === null) return betweenCandidates(explorer, found, said, torn);
  const seed = said.seed;
  const steps = found.steps.map((step) =>
    step.kind === 'crashInside' ? { ...step, crash: { ...step.crash, seed } } : step,
  );
  const mode = `${torn ? 'torn power' : 'power'} crash`;
  return [
    {
      steps: [...prefix, ...steps],
      crashChoices: said.explicit,
      betweenCrash: processCrash,
      comment: `the ${mode} below keeps ${said.kept}.`,
      exact: said.exact,
    },
  ];
}
