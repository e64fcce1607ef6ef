// The judging of a crash state: recovery through the oracle (the recovered state
// must be one that model/crashOutcomes.ts allows, every invariant must hold), then
// a finished cycle with the model and the implementation compared after each
// step. After a process crash whose unsynced writes the recovery inherited, a
// power loss that drops everything still unsynced, and a second recovery: what
// the first recovery read and built on must survive it.

import type { Oracle } from '../oracle/oracle.ts';
import { OracleFailure } from '../oracle/oracle.ts';
import type { ScenarioStep } from '../scenario.ts';
import type { CrashRequest, SutOp } from '../sut/systemUnderTest.ts';
import { choiceBitCount, dropEverything, seedFor } from './choices.ts';
import type { Explorer } from './explorer.ts';
import type { PowerLossAfterRecovery } from './found.ts';
import { explorationDefaults } from './options.ts';

/** Recovers after the crash and finishes a cycle through the oracle; `steps` gets the steps run. */
export async function recoverAndFinish(
  explorer: Explorer,
  oracle: Oracle,
  label: string,
  steps: ScenarioStep[],
): Promise<void> {
  steps.push({ kind: 'recover' });
  await oracle.step({ type: 'recover' }, `recover after ${label}`);
  await finishCycle(explorer, oracle, label, steps);
}

/** Finishes a cycle from a running volume: startCycle when idle, a transfer of every region of C, completeCycle. */
export async function finishCycle(
  explorer: Explorer,
  oracle: Oracle,
  label: string,
  steps: ScenarioStep[],
): Promise<void> {
  if (oracle.state.phase === 'idle') {
    steps.push({ kind: 'op', op: { type: 'startCycle' } });
    await oracle.step({ type: 'startCycle' }, `startCycle after recovering from ${label}`);
  }
  const current = oracle.state.current;
  for (let region = 0; region < current.length; region++) {
    if (!current[region]) continue;
    const op: SutOp = { type: 'transfer', region };
    steps.push({ kind: 'op', op });
    await oracle.step(op, `transfer ${explorer.names[region]} after recovering from ${label}`);
  }
  steps.push({ kind: 'op', op: { type: 'completeCycle' } });
  await oracle.step({ type: 'completeCycle' }, `completeCycle after recovering from ${label}`);
}

const dropAllSeeds = new Map<string, number | null>();

/** A seed whose crash-layer coins drop all of `bitCount` choices, or null (a pure function, remembered). */
function dropAllSeed(bitCount: number, seedSearchMax: number): number | null {
  const key = `${bitCount}/${seedSearchMax}`;
  let seed = dropAllSeeds.get(key);
  if (seed === undefined) {
    seed = seedFor(new Array<boolean>(bitCount).fill(false), seedSearchMax);
    dropAllSeeds.set(key, seed);
  }
  return seed;
}

/**
 * After a process crash, its recovery and a finished cycle (idle): a power loss
 * that keeps nothing unsynced, the writes recovery inherited from the killed
 * process among them, then a recovery judged as after any crash inside startCycle
 * (the state before it, or after it). `followUp` says, once it starts, how it was made.
 */
export async function powerLossAfterRecovery(
  explorer: Explorer,
  oracle: Oracle,
  label: string,
  steps: ScenarioStep[],
  followUp: { powerLoss: PowerLossAfterRecovery | null },
): Promise<void> {
  const sut = explorer.sut;
  if (oracle.state.phase !== 'idle' || oracle.state.crashed)
    throw new OracleFailure('sut', `${label}: the cycle after recovery did not end idle`);
  explorer.stats.powerLossesAfterRecovery++;
  const seedSearchMax = explorer.options.seedSearchMax ?? explorationDefaults.seedSearchMax;
  const seed = dropAllSeed(choiceBitCount(sut.shape(), false), seedSearchMax);
  followUp.powerLoss = { seed };
  const op: SutOp = { type: 'startCycle' };
  const crash: CrashRequest = { afterIo: 0, mode: 'power', seed: seed ?? 0, torn: false };
  sut.crashChoices = seed === null ? dropEverything : {};
  const what = `a power loss keeping nothing unsynced (startCycle crashed after io 0) after recovering from ${label} and finishing the cycle`;
  // The crash point's own shape sizes its power and torn subsets: this crash must not replace it.
  const shapeAtCrash = sut.lastShape;
  try {
    steps.push({ kind: 'crashInside', op, crash });
    await oracle.stepCrashing(op, crash, what);
    steps.push({ kind: 'recover' });
    await oracle.step({ type: 'recover' }, `recover after ${what}`);
  } finally {
    sut.lastShape = shapeAtCrash;
  }
}
