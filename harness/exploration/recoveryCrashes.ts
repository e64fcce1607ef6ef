// Crashes inside recovery. A recovery is an operation too: it
// writes (finishing a completion, clearing a map, rewriting a torn page) and syncs
// (every file, the directories), and a crash may strike after any of its durable
// calls. The state the next recovery finds must still be one that the crash which
// started it allows: recovery is crash cleanup and must be restartable.
//
// Which recoveries: every crash state is recovered once by the exploration; the
// first crash state whose recovery takes a new PATH (the sequence of durable calls
// it makes, in words) is crashed inside that recovery, at each of its calls, in
// process mode, in power mode keeping nothing unsynced, and with a few seeded
// subsets in power and torn mode. After a process crash inside a recovery the next
// recovery is crashed too, at each of its calls, in power mode keeping nothing
// (a second crash inside that recovery), and the third recovery is judged. Paths,
// not states, because two crash states whose recoveries make the same calls are
// the same recovery code with other bytes; a bound (recoveryPathsMax) keeps the
// cost linear in the exploration.

import type { ArmCrashOptions } from '../crash/powerChoices.ts';
import type { ScenarioStep } from '../scenario.ts';
import type { SutOp } from '../sut/systemUnderTest.ts';
import type { ChoiceShape } from '../sut/volumeSutOptions.ts';
import type { Choice } from './choices.ts';
import { dropEverything } from './choices.ts';
import type { CrashMaker } from './crashPoints.ts';
import type { Explorer } from './explorer.ts';
import type { FoundFailure } from './found.ts';
import { foundInWords } from './found.ts';
import { powerLossAfterRecovery, recoverAndFinish } from './judging.ts';
import type { PrefixNode } from './prefixes.ts';

/** Remembers the recovery paths crashed so far; says whether a new one is wanted. */
export class RecoveryCrashPlan {
  private readonly seen = new Set<string>();
  constructor(readonly pathsMax: number) {}

  wants(path: string): boolean {
    if (this.seen.size >= this.pathsMax || this.seen.has(path)) return false;
    this.seen.add(path);
    return true;
  }

  get pathCount(): number {
    return this.seen.size;
  }
}

/** The crash state whose recovery is crashed: how to make it again from its prefix. */
export interface RecoverySite {
  readonly node: PrefixNode;
  readonly label: string;
  readonly choice: Choice;
  readonly shape: ChoiceShape | null;
  readonly crash: CrashMaker;
  readonly inside: { op: SutOp; afterIo: number } | null;
  /** Durable calls of the recovery from this state. */
  readonly recoveryIo: number;
}

interface RecoveryCrash {
  readonly text: string;
  readonly arm: Omit<ArmCrashOptions, 'afterIo'>;
}

/** How each call of a recovery is crashed. */
function recoveryCrashes(): RecoveryCrash[] {
  const crashes: RecoveryCrash[] = [
    { text: 'process', arm: { mode: 'process' } },
    { text: 'power, keeping nothing unsynced', arm: { mode: 'power', ...dropEverything } },
  ];
  for (const seed of [1, 2]) crashes.push({ text: `power, seed ${seed}`, arm: { mode: 'power', seed } });
  for (const seed of [3, 4]) crashes.push({ text: `torn, seed ${seed}`, arm: { mode: 'power', seed, torn: true } });
  return crashes;
}

const secondCallsMax = 256;

/** Crashes the recovery of `site` at each of its calls; the first failure, or null. */
export async function crashRecoveries(explorer: Explorer, site: RecoverySite): Promise<FoundFailure | null> {
  const judged = new Set<string>();
  for (let afterIo = 0; afterIo < site.recoveryIo; afterIo++) {
    explorer.stats.inside.recovery.points++;
    for (const how of recoveryCrashes()) {
      const first = await oneRecoveryCrash(explorer, site, judged, afterIo, how, null);
      if (first.failure !== null) return first.failure;
      // A first crash that left a state judged before (same files, same inheritance) has had its second crashes.
      if (how.arm.mode !== 'process' || !first.fresh || explorer.options.secondRecoveryCrash === false) continue;
      for (let second = 0; second < secondCallsMax; second++) {
        explorer.stats.inside.recovery.points++;
        const result = await oneRecoveryCrash(explorer, site, judged, afterIo, how, second);
        if (result.failure !== null) return result.failure;
        if (!result.crashed) break;
      }
    }
  }
  return null;
}

/**
 * Makes the crash state again, crashes its recovery after `afterIo` calls (and,
 * with `second`, the next recovery after that many), then recovers and finishes
 * a cycle, judged against the outcomes of the first crash.
 */
async function oneRecoveryCrash(
  explorer: Explorer,
  site: RecoverySite,
  judged: Set<string>,
  afterIo: number,
  how: RecoveryCrash,
  second: number | null,
): Promise<{ failure: FoundFailure | null; crashed: boolean; fresh?: boolean }> {
  const sut = explorer.sut;
  const stats = explorer.stats.inside.recovery;
  stats.runs++;
  const unopened = explorer.restoreAt(site.node);
  if (unopened !== null) return { failure: unopened, crashed: false };
  const oracle = explorer.oracleAt(site.node.model);
  const steps: ScenarioStep[] = [];
  const secondText =
    second === null ? '' : `, then the next recovery crashed after io ${second} (power, keeping nothing unsynced)`;
  const label = `${site.label}; its recovery crashed after io ${afterIo} of ${site.recoveryIo} (${how.text})${secondText}`;
  try {
    await site.crash(oracle, steps);
    if (!sut.recoverCrashing({ ...how.arm, afterIo }).crashed) return { failure: null, crashed: false };
    steps.push({ kind: 'recover' }, { kind: 'crash' });
    if (second !== null) {
      if (!sut.recoverCrashing({ mode: 'power', ...dropEverything, afterIo: second }).crashed)
        return { failure: null, crashed: false };
      steps.push({ kind: 'recover' }, { kind: 'crash' });
    }
    const carried = sut.carriedSignature();
    const key = `${sut.files.digest()}|${carried}`;
    if (judged.has(key)) {
      explorer.stats.duplicates++;
      return { failure: null, crashed: true, fresh: false };
    }
    judged.add(key);
    stats.states++;
    await recoverAndFinish(explorer, oracle, label, steps);
    if (carried !== '') await powerLossAfterRecovery(explorer, oracle, label, steps, { powerLoss: null });
  } catch (error) {
    const failure = foundInWords(site.node, label, error, {
      op: site.inside?.op ?? null,
      crashAfterIo: site.inside?.afterIo ?? null,
      choice: site.choice,
      shape: site.shape,
      steps,
    });
    return { failure, crashed: true };
  } finally {
    explorer.progress();
  }
  return { failure: null, crashed: true, fresh: true };
}
