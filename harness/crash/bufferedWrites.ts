// The crash exploration of the NBD write path (writeMany, flush, and the swap that
// syncs P first; docs/format.md, "The buffered write path"): seeded histories
// (bufferedHistory.ts) run on the crash layer over the memory double, a crash
// after EVERY durable call k of the history (and once after its end), in each
// fault mode of the layer (process, power, torn; the power coins seeded from the
// history's seed and k), then recovery and the judgement of bufferedVerdict.ts.
// A fourth way kills the process, recovers on storage that still owes the killed
// process's unsynced writes (the crash layer's hand-over), and then loses power
// with nothing unsynced kept: a recovery that took the page cache's P for durable
// would lose returned writes there (docs/protocol.md section 5, rules 2 and 4).
//
// Each crash point runs the history again from the volume as created (a clone of
// the memory image), so that the k-th durable call is the same call on every run
// (the volume's API is synchronous and its calls a fixed sequence).

import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { type FaultMode, faultModes, type VolumeClass } from '../types.ts';
import { MemoryStorage } from '../storage/memoryStorage.ts';
import { type BufferedHistory, historyDir, makeHistory, runCall } from './bufferedHistory.ts';
import { type CrashOutcome, judgeOutcome } from './bufferedVerdict.ts';
import { CrashStorage } from './crashStorage.ts';
import { isSimulatedCrash } from './crashReport.ts';
import type { ArmCrashOptions } from './powerChoices.ts';

export interface BufferedExploration {
  /** The first history's seed; history i has seed `seed + i`. */
  readonly seed: number;
  readonly historyCount: number;
  /** The volume under test: the reference, or a planted bug. */
  readonly volumeClass?: VolumeClass;
  /** Stop after this many failures (a planted bug needs one). */
  readonly failuresMax?: number;
}

/** A fault mode of the crash layer, or a kill whose recovery then loses power. */
export type BufferedFault = FaultMode | 'kill, recovery, power loss';
const bufferedFaults: readonly BufferedFault[] = [...faultModes, 'kill, recovery, power loss'];

export interface BufferedFailure {
  readonly seed: number;
  readonly fault: BufferedFault;
  /** The crash came right after this durable call of the history (0: before the first). */
  readonly afterIo: number;
  /** Which call the crash interrupted, e.g. "call 3 (writeMany)", or "after the last call". */
  readonly where: string;
  readonly problems: readonly string[];
}

export interface BufferedResult {
  histories: number;
  /** Durable calls crashed after (each history's calls plus its end), once per history. */
  crashPoints: number;
  /** Recoveries judged: a crash point in each fault mode (and a kill, recovery and power loss). */
  outcomesJudged: number;
  /** Crash points per fault mode at which the crash came inside a call. */
  crashesInside: number;
  failures: BufferedFailure[];
}

/** A history of more durable calls than this is a runaway (a bug in the generator). */
const durableCallsMax = 2000;

export function exploreBufferedWrites(options: BufferedExploration): BufferedResult {
  const volumeClass = options.volumeClass ?? ReplicatedVolume;
  const failuresMax = options.failuresMax ?? Number.POSITIVE_INFINITY;
  const result: BufferedResult = { histories: 0, crashPoints: 0, outcomesJudged: 0, crashesInside: 0, failures: [] };
  for (let index = 0; index < options.historyCount && result.failures.length < failuresMax; index++) {
    const history = makeHistory(options.seed + index);
    const image = createdImage(history);
    result.histories++;
    for (const fault of bufferedFaults) {
      const points = exploreMode(history, image, volumeClass, fault, result, failuresMax);
      if (fault === bufferedFaults[0]) result.crashPoints += points;
      if (result.failures.length >= failuresMax) break;
    }
  }
  return result;
}

/** The files of the history's volume as created, on the memory double. */
function createdImage(history: BufferedHistory): MemoryStorage {
  const image = new MemoryStorage();
  ReplicatedVolume.create(image, historyDir, { regions: history.regions, regionSize: history.regionSize }).close();
  return image;
}

/** Crashes after every durable call in one fault mode; returns the number of crash points. */
function exploreMode(
  history: BufferedHistory,
  image: MemoryStorage,
  volumeClass: VolumeClass,
  fault: BufferedFault,
  result: BufferedResult,
  failuresMax: number,
): number {
  for (let afterIo = 0; afterIo < durableCallsMax; afterIo++) {
    const { outcome, callIndex, storage } = crashRun(history, image, volumeClass, fault, afterIo);
    const completed = callIndex === history.calls.length;
    if (!completed) result.crashesInside++;
    result.outcomesJudged++;
    const problems =
      fault === 'kill, recovery, power loss' ? recoverThenLosePower(outcome.files, storage, volumeClass) : [];
    if (problems.length === 0) problems.push(...judgeOutcome(outcome, volumeClass));
    if (problems.length > 0) {
      const call = history.calls[callIndex];
      const where = call === undefined ? 'after the last call' : `call ${callIndex} (${call.kind})`;
      result.failures.push({ seed: history.seed, fault, afterIo, where, problems });
      if (result.failures.length >= failuresMax) return afterIo + 1;
    }
    if (completed) return afterIo + 1;
  }
  throw new Error(`buffered writes: history of seed ${history.seed} makes more than ${durableCallsMax} durable calls`);
}

/**
 * After a kill: recovery (open, then close) on a fresh crash storage that the dead
 * one hands its unsynced records to, then a power loss that keeps none of what is
 * still unsynced. The files are then judged as after the kill alone.
 */
function recoverThenLosePower(files: MemoryStorage, killed: CrashStorage, volumeClass: VolumeClass): string[] {
  const fresh = new CrashStorage(files);
  killed.handOverTo(fresh);
  try {
    volumeClass.open(fresh, historyDir).close();
  } catch (error) {
    return [`recovery after the kill failed: ${error instanceof Error ? error.message : String(error)}`];
  }
  fresh.crashNow('power', { keepWrite: () => false, keepTruncate: () => false, keepNamespace: () => false });
  return [];
}

/** The crash of a fault mode, its coins seeded from the history and the crash point. */
function crashOptions(fault: BufferedFault, seed: number, afterIo: number): ArmCrashOptions {
  if (fault === 'process' || fault === 'kill, recovery, power loss') return { afterIo, mode: 'process' };
  return { afterIo, mode: 'power', torn: fault === 'torn', seed: seed * 4099 + afterIo };
}

/**
 * Runs the history on a clone of the image with a crash armed after durable call
 * `afterIo`; when the history ends first, the crash comes right after it. Returns
 * the files the crash left and which call it interrupted (calls.length: none).
 */
function crashRun(
  history: BufferedHistory,
  image: MemoryStorage,
  volumeClass: VolumeClass,
  fault: BufferedFault,
  afterIo: number,
): { outcome: CrashOutcome; callIndex: number; storage: CrashStorage } {
  const files = image.clone();
  const storage = new CrashStorage(files);
  const reopen = (): ReplicatedVolume => volumeClass.open(storage, historyDir);
  let volume = reopen();
  const crash = crashOptions(fault, history.seed, afterIo);
  storage.armCrash(crash);
  let callIndex = 0;
  try {
    for (; callIndex < history.calls.length; callIndex++) volume = runCall(volume, history.calls[callIndex]!, reopen);
    storage.crashNow(crash.mode, crash);
  } catch (error) {
    if (!isSimulatedCrash(error)) throw error;
  }
  const call = history.calls[callIndex];
  const last = Math.min(callIndex + 1, history.calls.length);
  const outcome: CrashOutcome = {
    // After the kill and the power loss, P must still hold what the kill alone left.
    fault: fault === 'kill, recovery, power loss' ? 'process' : fault,
    files,
    before: history.promises[callIndex]!,
    after: history.promises[last]!,
    inFlight: call?.kind === 'writeMany' ? call.writes : [],
  };
  return { outcome, callIndex, storage };
}

/** One line per failure (at most `linesMax`), with what replays it. */
export function describeFailures(failures: readonly BufferedFailure[], linesMax = 5): string {
  return failures
    .slice(0, linesMax)
    .map(
      (failure) =>
        `history seed ${failure.seed}, ${failure.fault} crash after durable call ${failure.afterIo} ` +
        `(${failure.where}): ${failure.problems.join('; ')}`,
    )
    .join('\n');
}
