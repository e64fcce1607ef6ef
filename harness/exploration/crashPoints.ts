// The crash points of the exploration: every durable call of an accepted
// operation (k = 0..io), and between operations at each prefix state, in every
// mode and every choice of what a power or torn crash keeps (choices.ts). One run
// per choice; a run whose post-crash state was judged before at the same crash
// site is a duplicate (see the head of explorer.ts, HOW IT IS MADE FAST).

import type { Oracle } from '../oracle/oracle.ts';
import { OracleFailure } from '../oracle/oracle.ts';
import type { ScenarioStep } from '../scenario.ts';
import type { CrashRequest, SutOp } from '../sut/systemUnderTest.ts';
import { asFailure } from '../sut/thrown.ts';
import type { ChoiceShape } from '../sut/volumeSutOptions.ts';
import type { Choice, ExplorationMode } from './choices.ts';
import { choicesAt, choiceText, noShape, powerChoices } from './choices.ts';
import type { Explorer } from './explorer.ts';
import type { FoundFailure, PowerLossAfterRecovery } from './found.ts';
import { powerLossAfterRecovery, recoverAndFinish } from './judging.ts';
import type { PrefixNode } from './prefixes.ts';
import { crashRecoveries } from './recoveryCrashes.ts';
import { rotKind } from './rot.ts';
import type { ModeStats } from './stats.ts';

/** How a run crashes, once restored: `steps` gets the crash step. */
export type CrashMaker = (oracle: Oracle, steps: ScenarioStep[]) => Promise<void>;

/** The choices of one mode at a crash point, and whether they were sampled; counted in the stats. */
function countedChoices(
  explorer: Explorer,
  mode: ExplorationMode,
  shape: ChoiceShape,
): { choices: Choice[]; sampled: boolean } {
  const modeStats = explorer.stats.byMode[mode];
  modeStats.points++;
  const { choices, sampled, bits } = choicesAt(
    mode,
    shape,
    explorer.subsetBitsMax,
    explorer.samplesMax,
    explorer.tearable,
  );
  if (mode !== 'process') explorer.stats.choiceBitsMax[mode] = Math.max(explorer.stats.choiceBitsMax[mode], bits);
  if (sampled) modeStats.sampledPoints++;
  return { choices, sampled };
}

/** Every crash point of an accepted operation: k = 0..io, in every mode and subset. */
export async function crashInside(
  explorer: Explorer,
  node: PrefixNode,
  op: SutOp,
  io: number,
): Promise<FoundFailure | null> {
  const sut = explorer.sut;
  explorer.stats.crashSites++;
  const judged = new Set<string>();
  const opText = explorer.describe(op);
  for (let afterIo = 0; afterIo <= io; afterIo++) {
    explorer.stats.crashPoints++;
    // Learn what is unsynced at this point with a process crash (judged too when process mode is on).
    let shape: ChoiceShape | null = null;
    if (!explorer.modes.includes('process')) {
      const unopened = explorer.restoreAt(node);
      if (unopened !== null) return unopened;
      await sut.applyCrashing(op, { afterIo, mode: 'process', seed: 0, torn: false });
      shape = sut.lastShape;
      if (shape === null) return fewerCalls(explorer, node, op, afterIo, io);
    }
    let sampledHere = false;
    for (const mode of explorer.modes) {
      // Process mode needs no shape; the modes run process first, which learns it for the others.
      const { choices, sampled } = countedChoices(explorer, mode, shape ?? noShape);
      sampledHere ||= sampled;
      for (const choice of choices) {
        const how = choiceText(choice);
        const label = `${opText} crashed after io ${afterIo} of ${io} (${mode}${how === '' ? '' : `, ${how}`}) after ${explorer.describePath(node.path)}`;
        const crashShape = shape;
        const crash: CrashMaker = (oracle, steps) => {
          const request: CrashRequest = {
            afterIo,
            mode: mode === 'process' ? 'process' : 'power',
            seed: choice.seed,
            torn: mode === 'torn',
          };
          steps.push({ kind: 'crashInside', op, crash: request });
          sut.crashChoices = powerChoices(choice, crashShape);
          return oracle.stepCrashing(op, request, label).then(() => undefined);
        };
        const found = await crashRun(explorer, { node, judged, label, choice, shape, crash, inside: { op, afterIo } });
        if (found !== null) return found;
        if (mode === 'process' && shape === null) {
          shape = sut.lastShape;
          if (shape === null) return fewerCalls(explorer, node, op, afterIo, io);
        }
      }
    }
    if (sampledHere) explorer.stats.sampledPoints++;
    else explorer.stats.exhaustedPoints++;
  }
  return null;
}

/**
 * The operation, run again from the same state, finished before its k-th durable
 * call: the implementation is not deterministic, and crash points cannot be named.
 */
function fewerCalls(explorer: Explorer, node: PrefixNode, op: SutOp, afterIo: number, io: number): FoundFailure {
  const label = `${explorer.describe(op)} after ${explorer.describePath(node.path)}`;
  const error = new OracleFailure(
    'sut',
    `${label} made ${io} durable I/O calls once, and fewer than ${afterIo} when run again from the same state: its calls must be the same on every run`,
  );
  return {
    error,
    node,
    op: null,
    plainOp: op,
    crashAfterIo: null,
    choice: null,
    shape: null,
    steps: [{ kind: 'op', op }],
    special: label,
  };
}

/** Crashes between operations at a prefix state: the recovered state must be exactly the model's. */
export async function crashBetween(explorer: Explorer, node: PrefixNode): Promise<FoundFailure | null> {
  const sut = explorer.sut;
  explorer.stats.crashSites++;
  explorer.stats.crashPoints++;
  const unopened = explorer.restoreAt(node);
  if (unopened !== null) return unopened;
  const shape = sut.shape();
  const judged = new Set<string>();
  let sampledHere = false;
  for (const mode of explorer.modes) {
    const { choices, sampled } = countedChoices(explorer, mode, shape);
    sampledHere ||= sampled;
    for (const choice of choices) {
      const how = choiceText(choice);
      const label = `a ${mode} crash between operations${how === '' ? '' : ` (${how})`} after ${explorer.describePath(node.path)}`;
      const crash: CrashMaker = async (oracle, steps) => {
        steps.push({ kind: 'crash' });
        sut.betweenCrash = { mode: mode === 'process' ? 'process' : 'power', choices: powerChoices(choice, shape) };
        await oracle.step({ type: 'crash' }, label);
      };
      const found = await crashRun(explorer, { node, judged, label, choice, shape, crash, inside: null });
      if (found !== null) return found;
    }
  }
  if (sampledHere) explorer.stats.sampledPoints++;
  else explorer.stats.exhaustedPoints++;
  return null;
}

/** One crash run: where it starts, how it crashes, and the states judged at its crash site so far. */
interface CrashRun {
  readonly node: PrefixNode;
  /** The post-crash states judged at this crash site (files, and what recovery inherits). */
  readonly judged: Set<string>;
  readonly label: string;
  readonly choice: Choice;
  readonly shape: ChoiceShape | null;
  readonly crash: CrashMaker;
  /** The crashing operation and its crash point, or null between operations. */
  readonly inside: { op: SutOp; afterIo: number } | null;
}

/** One crash run: restore, crash, and unless the state was judged before, recover and finish. */
async function crashRun(explorer: Explorer, run: CrashRun): Promise<FoundFailure | null> {
  const { node, judged, label, choice, shape, crash, inside } = run;
  const sut = explorer.sut;
  const modeStats: ModeStats = explorer.stats.byMode[choice.mode];
  explorer.stats.runs++;
  modeStats.runs++;
  const unopened = explorer.restoreAt(node);
  if (unopened !== null) return unopened;
  const oracle = explorer.oracleAt(node.model);
  const steps: ScenarioStep[] = [];
  const followUp: { powerLoss: PowerLossAfterRecovery | null } = { powerLoss: null };
  try {
    await crash(oracle, steps);
    const digest = sut.files.digest();
    // What recovery inherits is part of the crash state. Judging a state that
    // carries something also covers its files with nothing carried: the same
    // recovery, with the power loss after it on top.
    const carried = choice.mode === 'process' ? sut.carriedSignature() : '';
    const key = carried === '' ? digest : `${digest}|${carried}`;
    if (judged.has(key)) {
      explorer.stats.duplicates++;
      return null;
    }
    judged.add(key);
    judged.add(digest);
    explorer.stats.crashStates++;
    modeStats.states++;
    await recoverAndFinish(explorer, oracle, label, steps);
    const recovery = { path: sut.lastRecoveryPath, io: sut.lastRecoveryIo };
    if (carried !== '') await powerLossAfterRecovery(explorer, oracle, label, steps, followUp);
    // A path is crashed once per kind of prefix state: the same calls over an empty or a full map differ.
    if (explorer.recoveryCrashes.wants(`${rotKind(node.model, explorer.activeRegions)}|${recovery.path}`)) {
      const site = { node, label, choice, shape, crash, inside, recoveryIo: recovery.io };
      const found = await crashRecoveries(explorer, site);
      if (found !== null) return found;
    }
  } catch (error) {
    const found: FoundFailure = {
      error: asFailure(error, label),
      node,
      op: inside?.op ?? null,
      plainOp: null,
      crashAfterIo: inside?.afterIo ?? null,
      choice,
      shape: shape ?? sut.lastShape,
      steps,
    };
    return followUp.powerLoss === null ? found : { ...found, powerLoss: followUp.powerLoss };
  } finally {
    explorer.progress();
  }
  return null;
}
