// The crash exploration of the receiver's store (impl/receive/receiverStore.ts, its
// crash model at the top and in docs/format.md, "The receiver's files"): seeded
// histories of what a primary sends (receiverHistory.ts) run on the crash layer over
// the memory double, crashed after EVERY durable call of the history (and once after
// its end) in process, power and torn mode (the power coins seeded from the history
// and the call), and in a fourth way: a kill, then a power loss (torn) after every
// durable call of the recovery that follows it. After each crash: recovery (open),
// and the judgement:
//   1. the consistent image is, byte for byte, the last committed point in time or,
//      when the crash came inside a complete signal, the one it commits (INV-DR);
//      so a cycle whose complete signal returned is never lost;
//   2. the primary resumes: the start block of the cycle it was sending, what no
//      returned flush covered, the complete block, a flush: the consistent image is
//      then the one the primary sent (what the flushes covered was kept);
//   3. a following cycle completes and is right, and readLatest equals it.
// Each crash point runs the history again from the claimed store (a clone of the
// memory image), so that call k is the same call on every run.

import { ReceiverStore } from '../../impl/receive/receiverStore.ts';
import { type FaultMode, faultModes } from '../types.ts';
import { MemoryStorage } from '../storage/memoryStorage.ts';
import { CrashStorage } from './crashStorage.ts';
import { isSimulatedCrash } from './crashReport.ts';
import type { ArmCrashOptions } from './powerChoices.ts';
import { judgeAfterCrash, receiverDir, runStep } from './receiverJudge.ts';
import { claimSteps, makeReceiverHistory, type ReceiverHistory, type ReceiverStep } from './receiverHistory.ts';

/** The store under test: the reference, or a planted bug. */
export type ReceiverStoreClass = typeof ReceiverStore;

/** A fault mode of the crash layer, or a kill whose recovery then loses power at each of its calls. */
export type ReceiverFault = FaultMode | 'kill, power loss inside recovery';
export const receiverFaults: readonly ReceiverFault[] = [...faultModes, 'kill, power loss inside recovery'];

export interface ReceiverExploration {
  /** The first history's seed; history i has seed `seed + i`. */
  readonly seed: number;
  readonly historyCount: number;
  readonly storeClass?: ReceiverStoreClass;
  /** Stop after this many failures (a planted bug needs one). */
  readonly failuresMax?: number;
  /** Only these fault modes (default all). */
  readonly faults?: readonly ReceiverFault[];
}

export interface ReceiverFailure {
  readonly seed: number;
  readonly fault: ReceiverFault;
  readonly afterIo: number;
  /** Recovery's durable call the second crash came after, for the fourth way. */
  readonly recoveryAfterIo: number | null;
  readonly where: string;
  readonly problems: readonly string[];
}

export interface ReceiverResult {
  histories: number;
  /** Durable calls crashed after (each history's calls plus its end), once per history. */
  crashPoints: number;
  /** Outcomes judged, per fault mode. */
  outcomes: Map<ReceiverFault, number>;
  failures: ReceiverFailure[];
}

/** A history of more durable calls than this is a runaway (a bug in the generator or the store). */
const durableCallsMax = 5000;

export function exploreReceiverCrashes(options: ReceiverExploration): ReceiverResult {
  const storeClass = options.storeClass ?? ReceiverStore;
  const failuresMax = options.failuresMax ?? Number.POSITIVE_INFINITY;
  const faults = options.faults ?? receiverFaults;
  const result: ReceiverResult = { histories: 0, crashPoints: 0, outcomes: new Map(), failures: [] };
  for (let index = 0; index < options.historyCount && result.failures.length < failuresMax; index++) {
    const history = makeReceiverHistory(options.seed + index);
    const image = claimedFiles(history);
    result.histories++;
    for (const fault of faults) {
      const points = exploreFault({ history, image, storeClass, fault, result, failuresMax });
      if (fault === faults[0]) result.crashPoints += points;
      if (result.failures.length >= failuresMax) break;
    }
  }
  return result;
}

/** The store as the primary's claim leaves it (cycle 0: zeros, complete), on the memory double. */
function claimedFiles(history: ReceiverHistory): MemoryStorage {
  const files = new MemoryStorage();
  const store = ReceiverStore.create(files, receiverDir, history.exportSize);
  for (const step of claimSteps(history.identity)) runStep(store, step);
  store.close();
  return files;
}

interface FaultRun {
  readonly history: ReceiverHistory;
  readonly image: MemoryStorage;
  readonly storeClass: ReceiverStoreClass;
  readonly fault: ReceiverFault;
  readonly result: ReceiverResult;
  readonly failuresMax: number;
}

/** Crashes after every durable call in one fault mode; returns the number of crash points. */
function exploreFault(run: FaultRun): number {
  const { history } = run;
  for (let afterIo = 0; afterIo < durableCallsMax; afterIo++) {
    const first = crashRun(run, afterIo);
    const step = history.steps[first.stepIndex];
    const where = step === undefined ? 'after the last step' : `step ${first.stepIndex} (${stepName(step)})`;
    if (run.fault === 'kill, power loss inside recovery') exploreRecoveryCrashes(run, afterIo, where);
    else note(run, afterIo, null, where, first.problem ?? judgeAfterCrash(judgeInput(run, first, null)).problems);
    if (run.result.failures.length >= run.failuresMax || first.stepIndex === history.steps.length) return afterIo + 1;
  }
  throw new Error(`receiver crashes: history of seed ${history.seed} makes more than ${durableCallsMax} durable calls`);
}

/** The fourth way: the kill at `afterIo`, then recovery crashed (power, torn) after each of its durable calls. */
function exploreRecoveryCrashes(run: FaultRun, afterIo: number, where: string): void {
  for (let recoveryAfterIo = 0; recoveryAfterIo < durableCallsMax; recoveryAfterIo++) {
    const first = crashRun(run, afterIo);
    const judged = first.problem === null ? judgeAfterCrash(judgeInput(run, first, recoveryAfterIo)) : null;
    note(run, afterIo, recoveryAfterIo, where, first.problem ?? judged!.problems);
    if (judged === null || !judged.recoveryCrashed || run.result.failures.length >= run.failuresMax) return;
  }
}

interface CrashedRun {
  readonly files: MemoryStorage;
  readonly storage: CrashStorage;
  /** The step the crash came inside (steps.length: after the last). */
  readonly stepIndex: number;
  /** A step that failed otherwise than by the crash: a store that refuses what it must take. */
  readonly problem: string[] | null;
}

/** The crash of a fault mode, its coins seeded from the history and the crash point. */
function crashOptions(fault: ReceiverFault, seed: number, afterIo: number): ArmCrashOptions {
  if (fault === 'process' || fault === 'kill, power loss inside recovery') return { afterIo, mode: 'process' };
  return { afterIo, mode: 'power', torn: fault === 'torn', seed: seed * 4099 + afterIo };
}

/** Runs the history on a clone of the claimed store with a crash armed after durable call `afterIo`. */
function crashRun(run: FaultRun, afterIo: number): CrashedRun {
  const files = run.image.clone();
  const storage = new CrashStorage(files);
  const options = { journalBytesMax: run.history.journalBytesMax };
  let store = run.storeClass.open(storage, receiverDir, options);
  const crash = crashOptions(run.fault, run.history.seed, afterIo);
  storage.armCrash(crash);
  let stepIndex = 0;
  try {
    for (; stepIndex < run.history.steps.length; stepIndex++) {
      const step = run.history.steps[stepIndex]!;
      if (step.kind === 'reopen') {
        store.close();
        store = run.storeClass.open(storage, receiverDir, options);
      } else runStep(store, step);
    }
    storage.crashNow(crash.mode, crash);
  } catch (error) {
    if (!isSimulatedCrash(error)) {
      storage.crashNow('process');
      return { files, storage, stepIndex, problem: [`step ${stepIndex} failed without a crash: ${String(error)}`] };
    }
  }
  return { files, storage, stepIndex, problem: null };
}

function judgeInput(run: FaultRun, first: CrashedRun, recoveryAfterIo: number | null) {
  return {
    history: run.history,
    storeClass: run.storeClass,
    files: first.files,
    crashed: first.storage,
    promise: run.history.promises[first.stepIndex]!,
    recoveryAfterIo,
  };
}

function note(
  run: FaultRun,
  afterIo: number,
  recoveryAfterIo: number | null,
  where: string,
  problems: readonly string[],
): void {
  run.result.outcomes.set(run.fault, (run.result.outcomes.get(run.fault) ?? 0) + 1);
  if (problems.length === 0) return;
  run.result.failures.push({ seed: run.history.seed, fault: run.fault, afterIo, recoveryAfterIo, where, problems });
}

function stepName(step: ReceiverStep): string {
  return step.kind === 'control' ? `${step.state} ${step.cycle}` : step.kind;
}

/** One line per failure (at most `linesMax`), with what replays it. */
export function describeReceiverFailures(failures: readonly ReceiverFailure[], linesMax = 5): string {
  return failures
    .slice(0, linesMax)
    .map((failure) => {
      const recovery =
        failure.recoveryAfterIo === null ? '' : `, recovery crashed after its call ${failure.recoveryAfterIo}`;
      return (
        `history seed ${failure.seed}, ${failure.fault} crash after durable call ${failure.afterIo} ` +
        `(${failure.where})${recovery}: ${failure.problems.join('; ')}`
      );
    })
    .join('\n');
}

/** One line of counts per fault mode (cowmap crashes, the test's log). */
export function formatReceiverCounts(result: ReceiverResult): string[] {
  return [...result.outcomes].map(
    ([fault, outcomes]) =>
      `receiver, ${fault}: ${result.histories} ${result.histories === 1 ? 'history' : 'histories'}, ` +
      `${result.crashPoints} crash points, ${outcomes} outcomes judged`,
  );
}

/** `cowmap crashes`' share: the exploration of the reference store, its lines of counts, the failures' lines, the time. */
export function receiverCrashesReport(options: ReceiverExploration): { lines: string[]; failed: boolean } {
  const startMs = performance.now();
  const result = exploreReceiverCrashes({ failuresMax: 1, ...options });
  const seconds = ((performance.now() - startMs) / 1000).toFixed(1);
  const lines = formatReceiverCounts(result);
  if (result.failures.length > 0) {
    lines.push(`FAIL receiver: ${describeReceiverFailures(result.failures)}`);
    return { lines, failed: true };
  }
  lines.push(
    `the receiver's store: every crash left the last committed point in time or the one in flight, ` +
      `and resumed and finished a cycle (seed ${options.seed}, ${seconds} s)`,
  );
  return { lines, failed: false };
}
