// The judgement of one crash of the receiver's store (receiverCrashes.ts): recovery
// (with a second crash inside it, when asked), the consistent image against the
// model's promise, the primary's resume of its cycle, and a following cycle.

import { bytesEqual } from '../../impl/checksum.ts';
import { controlBlockSize, controlOffsetOf } from '../../impl/remote/controlBlock.ts';
import type { ReceiverStore } from '../../impl/receive/receiverStore.ts';
import { CrashStorage } from './crashStorage.ts';
import { isSimulatedCrash } from './crashReport.ts';
import type { MemoryStorage } from '../storage/memoryStorage.ts';
import {
  applyStep,
  controlStep,
  randomBytes,
  type ReceiverHistory,
  type ReceiverPromise,
  type ReceiverStep,
  seededRandom,
} from './receiverHistory.ts';

export const receiverDir = '/receiver';

/** Sends one step of a history to the store (a reopen is the caller's). */
export function runStep(store: ReceiverStore, step: ReceiverStep): void {
  if (step.kind === 'control') store.write(store.exportSize - controlBlockSize, step.bytes);
  else if (step.kind === 'write') store.write(step.offset, step.bytes);
  else if (step.kind === 'zeroes') store.writeZeroes(step.offset, step.length);
  else if (step.kind === 'flush') store.flush();
}

export interface JudgeInput {
  readonly history: ReceiverHistory;
  readonly storeClass: typeof ReceiverStore;
  readonly files: MemoryStorage;
  /** The storage that crashed: it hands its unsynced records (a kill) to recovery's. */
  readonly crashed: CrashStorage;
  readonly promise: ReceiverPromise;
  /** Crash recovery (power, torn) after this many of its durable calls; null: recovery runs whole. */
  readonly recoveryAfterIo: number | null;
}

export interface Judgement {
  readonly problems: string[];
  /** The second crash came inside recovery (false: recovery ended before its call recoveryAfterIo). */
  readonly recoveryCrashed: boolean;
}

/** Recovers the crashed files and judges them; never throws for a store's fault (it is a problem). */
export function judgeAfterCrash(input: JudgeInput): Judgement {
  const fresh = new CrashStorage(input.files);
  input.crashed.handOverTo(fresh);
  let storage = fresh;
  const options = { journalBytesMax: input.history.journalBytesMax };
  let recoveryCrashed = false;
  if (input.recoveryAfterIo !== null) {
    const seed = input.history.seed * 7919 + input.recoveryAfterIo;
    fresh.armCrash({ afterIo: input.recoveryAfterIo, mode: 'power', torn: true, seed });
    try {
      input.storeClass.open(fresh, receiverDir, options).close();
    } catch (error) {
      if (!isSimulatedCrash(error)) return { problems: [`recovery failed: ${String(error)}`], recoveryCrashed };
    }
    recoveryCrashed = fresh.isCrashed;
    if (recoveryCrashed) {
      storage = new CrashStorage(input.files);
      fresh.handOverTo(storage);
    } else fresh.disarm();
  }
  // A reader first (read --consistent of the files the crash left): it writes nothing, so a
  // committed journal not yet applied must show through its overlay.
  const readerImage = input.recoveryAfterIo === null ? readOnlyImage(input, storage) : null;
  let store: ReceiverStore;
  try {
    store = input.storeClass.open(storage, receiverDir, options);
  } catch (error) {
    return { problems: [`recovery failed: ${String(error)}`], recoveryCrashed };
  }
  try {
    const consistent = store.readConsistent(0, input.history.exportSize);
    if (typeof readerImage === 'string' || (readerImage !== null && !bytesEqual(readerImage, consistent))) {
      const what = typeof readerImage === 'string' ? readerImage : 'its image differs from the recovered one';
      return { problems: [`a read-only open before recovery: ${what}`], recoveryCrashed };
    }
    return { problems: judgeStore(store, input.history, input.promise), recoveryCrashed };
  } catch (error) {
    return { problems: [`the recovered store failed: ${String(error)}`], recoveryCrashed };
  } finally {
    store.close();
  }
}

/** The consistent image a read-only open shows, or why it failed. */
function readOnlyImage(input: JudgeInput, storage: CrashStorage): Uint8Array | string {
  try {
    const reader = input.storeClass.open(storage, receiverDir, { readOnly: true });
    try {
      return reader.readConsistent(0, input.history.exportSize);
    } finally {
      reader.close();
    }
  } catch (error) {
    return String(error);
  }
}

/** The first byte where two exports differ, said for a human. */
function difference(got: Uint8Array, expected: Uint8Array, controlOffset: number): string {
  let at = 0;
  while (at < got.length && got[at] === expected[at]) at++;
  const where = at >= controlOffset ? `control region byte ${at - controlOffset}` : `image byte ${at}`;
  return `${where}: ${got[at]}, expected ${expected[at]}`;
}

function judgeStore(store: ReceiverStore, history: ReceiverHistory, promise: ReceiverPromise): string[] {
  const { identity, exportSize } = history;
  const controlOffset = controlOffsetOf(identity);
  const consistent = store.readConsistent(0, exportSize);
  const allowed = [promise.committed, promise.inflight].filter((image) => image !== null);
  if (!allowed.some((image) => bytesEqual(consistent, image)))
    return [
      `the consistent image is neither the last committed nor the one in flight (${difference(consistent, promise.committed, controlOffset)})`,
    ];

  // The cycle status reports is the one whose image it holds (either, when the two are the same bytes).
  const cycles = [
    ...(bytesEqual(consistent, promise.committed) ? [promise.committedCycle] : []),
    ...(promise.inflight !== null && bytesEqual(consistent, promise.inflight) ? [promise.resumeCycle] : []),
  ];
  if (!cycles.includes(store.status().completedCycle))
    return [
      `status says cycle ${store.status().completedCycle} completed, the image is cycle ${cycles.join(' or ')}'s`,
    ];

  // The primary resumes its cycle: the start block, what no returned flush covered, the complete block.
  let expected = consistent;
  if (promise.resumeCycle !== null) {
    const cycle = promise.resumeCycle;
    const complete = controlStep(identity, cycle, 'complete', 0);
    const resume = [
      controlStep(identity, cycle, 'sending', 0),
      ...promise.resend.filter((step) => step.kind !== 'control'),
    ];
    for (const step of [...resume, { kind: 'flush' } as const, complete, { kind: 'flush' } as const])
      runStep(store, step);
    expected = promise.latest.slice();
    applyStep(expected, complete, controlOffset);
    const got = store.readConsistent(0, exportSize);
    if (!bytesEqual(got, expected))
      return [
        `after the primary resumed cycle ${cycle}: ${difference(got, expected, controlOffset)} (a write a flush covered was lost)`,
      ];
  }

  // A following cycle completes and is right.
  const next = seededRandom(history.seed + 17);
  const { regionSize, regions } = identity;
  const region = Math.floor(next() * regions);
  const follow: ReceiverStep[] = [
    controlStep(identity, history.nextCycle, 'sending', 0),
    { kind: 'write', offset: region * regionSize, bytes: randomBytes(next, regionSize) },
    { kind: 'write', offset: ((region + 1) % regions) * regionSize + 100, bytes: randomBytes(next, 300) },
    { kind: 'flush' },
    controlStep(identity, history.nextCycle, 'complete', 1),
    { kind: 'flush' },
  ];
  expected = expected.slice();
  for (const step of follow) {
    runStep(store, step);
    applyStep(expected, step, controlOffset);
  }
  const got = store.readConsistent(0, exportSize);
  if (!bytesEqual(got, expected))
    return [`the following cycle ${history.nextCycle}: ${difference(got, expected, controlOffset)}`];
  if (!bytesEqual(store.readLatest(0, exportSize), expected))
    return ['after the following cycle readLatest differs from readConsistent'];
  if (store.status().completedCycle !== history.nextCycle)
    return [`status says cycle ${store.status().completedCycle} completed`];
  return [];
}
