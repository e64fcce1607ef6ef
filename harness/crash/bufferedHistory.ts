// The seeded histories of the NBD write path that the buffered-writes exploration
// (bufferedWrites.ts) crashes inside, and what each point of a history promises
// about P (docs/format.md, "The buffered write path").
//
// A history is a small geometry (4..6 regions of 1 or 2 KiB) and a list of calls:
// writeMany batches of 1..4 writes (inside a region, across a boundary, whole
// regions; random bytes, so that every write's bytes tell it from the others),
// flush, startCycle, transferRegions of some unsent regions of C, completeCycle,
// and a close followed by an open. It is made by running the reference volume on
// the memory double, so that every call is one the volume accepts there (a
// transfer names regions of C, completion comes once C is sent).
//
// Along the way the promise of every point is kept (a PrimaryPromise, below): P as the
// last durability point left it (flush, startCycle and close sync P), the writes
// that returned since, and P@swap of every cycle: when startCycle returns, P was
// synced before the swap, so P@swap is exactly the bytes of every returned write.

import { ReplicatedVolume, type ByteWrite } from '../../impl/replicatedVolume.ts';
import { Prng } from '../prng.ts';
import { MemoryStorage } from '../storage/memoryStorage.ts';

export type BufferedCall =
  | { kind: 'writeMany'; writes: ByteWrite[] }
  | { kind: 'flush' }
  | { kind: 'startCycle' }
  | { kind: 'transferRegions'; regions: number[] }
  | { kind: 'completeCycle' }
  /** close (which flushes) and open again: recovery of a clean close. */
  | { kind: 'reopen' };

/** What the volume owes about P before a call (or at the end of the history). */
export interface PrimaryPromise {
  /** P at the last durability point that returned (flush, startCycle, close). */
  readonly durable: Uint8Array;
  /** The writes that returned after it, oldest first. */
  readonly since: readonly ByteWrite[];
  /** P with every returned write: what a read returns. */
  readonly current: Uint8Array;
  /** P@swap of each cycle number; cycle 0 is the volume as created (all zero, as S). */
  readonly swaps: ReadonlyMap<number, Uint8Array>;
}

export interface BufferedHistory {
  readonly seed: number;
  readonly regions: number;
  readonly regionSize: number;
  readonly calls: readonly BufferedCall[];
  /** promises[i]: before calls[i]; promises[calls.length]: after the last call. */
  readonly promises: readonly PrimaryPromise[];
}

export const historyDir = '/volume';

const callCountMin = 8;
const callCountMax = 14;
const writesPerBatchMax = 4;

/** Runs `call` on `volume`; returns the volume to go on with (a reopen makes a new one). */
export function runCall<T extends ReplicatedVolume>(volume: T, call: BufferedCall, reopen: (closed: T) => T): T {
  switch (call.kind) {
    case 'writeMany':
      volume.writeMany(call.writes);
      return volume;
    case 'flush':
      volume.flush();
      return volume;
    case 'startCycle':
      volume.startCycle();
      return volume;
    case 'transferRegions':
      volume.transferRegions(call.regions);
      return volume;
    case 'completeCycle':
      volume.completeCycle();
      return volume;
    case 'reopen':
      volume.close();
      return reopen(volume);
  }
}

/** The history of `seed`, made on the reference volume (see the header). */
export function makeHistory(seed: number): BufferedHistory {
  const prng = new Prng(seed);
  const regions = 4 + prng.nextInt(3);
  const regionSize = 1024 * (1 + prng.nextInt(2));
  const storage = new MemoryStorage();
  let volume = ReplicatedVolume.create(storage, historyDir, { regions, regionSize });
  const sizeBytes = regions * regionSize;
  let promise: PrimaryPromise = {
    durable: new Uint8Array(sizeBytes),
    since: [],
    current: new Uint8Array(sizeBytes),
    swaps: new Map([[0, new Uint8Array(sizeBytes)]]),
  };
  const calls: BufferedCall[] = [];
  const promises: PrimaryPromise[] = [promise];
  const callCount = callCountMin + prng.nextInt(callCountMax - callCountMin + 1);
  for (let index = 0; index < callCount; index++) {
    const call = nextCall(prng, volume);
    promise = promiseAfter(promise, call, volume.cycle);
    volume = runCall(volume, call, () => ReplicatedVolume.open(storage, historyDir));
    calls.push(call);
    promises.push(promise);
  }
  volume.close();
  return { seed, regions, regionSize, calls, promises };
}

/** A call the volume accepts in its present state, drawn with weights that favour writes. */
function nextCall(prng: Prng, volume: ReplicatedVolume): BufferedCall {
  const draw = prng.nextInt(100);
  if (draw < 45) return { kind: 'writeMany', writes: drawBatch(prng, volume.regions, volume.regionSize) };
  if (draw < 55) return { kind: 'flush' };
  if (draw < 62) return { kind: 'reopen' };
  if (volume.phase === 'idle') return { kind: 'startCycle' };
  const unsent = volume.unsentRegions();
  if (unsent.length === 0) return { kind: 'completeCycle' };
  // Some of the unsent regions, at least one, in a shuffled order.
  const chosen = unsent.filter(() => prng.nextInt(3) !== 0);
  const regions = chosen.length > 0 ? chosen : [unsent[prng.nextInt(unsent.length)]!];
  for (let i = regions.length - 1; i > 0; i--) {
    const j = prng.nextInt(i + 1);
    [regions[i], regions[j]] = [regions[j]!, regions[i]!];
  }
  return { kind: 'transferRegions', regions };
}

/** 1..4 writes: inside one region, across a region boundary, or whole regions; random bytes. */
function drawBatch(prng: Prng, regions: number, regionSize: number): ByteWrite[] {
  const sizeBytes = regions * regionSize;
  const writes: ByteWrite[] = [];
  const count = 1 + prng.nextInt(writesPerBatchMax);
  for (let i = 0; i < count; i++) {
    const shape = prng.nextInt(4);
    let offset: number;
    let length: number;
    if (shape <= 1) {
      // Inside one region.
      const region = prng.nextInt(regions);
      const start = prng.nextInt(regionSize);
      offset = region * regionSize + start;
      length = 1 + prng.nextInt(regionSize - start);
    } else if (shape === 2 && regions > 1) {
      // Across the boundary between two regions.
      const boundary = (1 + prng.nextInt(regions - 1)) * regionSize;
      const before = 1 + prng.nextInt(regionSize);
      offset = boundary - before;
      length = before + 1 + prng.nextInt(regionSize);
    } else {
      // Whole regions, one or two.
      const first = prng.nextInt(regions);
      offset = first * regionSize;
      length = Math.min(1 + prng.nextInt(2), regions - first) * regionSize;
    }
    length = Math.min(length, sizeBytes - offset);
    const bytes = new Uint8Array(length);
    for (let j = 0; j < length; j++) bytes[j] = prng.nextInt(256);
    writes.push({ offset, bytes });
  }
  return writes;
}

/** `p` with `writes` applied in order. */
export function applied(p: Uint8Array, writes: readonly ByteWrite[]): Uint8Array {
  const result = p.slice();
  for (const { offset, bytes } of writes) result.set(bytes, offset);
  return result;
}

/** The promise after `call` returned; `cycle` is the volume's cycle number before it. */
function promiseAfter(promise: PrimaryPromise, call: BufferedCall, cycle: number): PrimaryPromise {
  switch (call.kind) {
    case 'writeMany':
      return {
        ...promise,
        since: [...promise.since, ...call.writes],
        current: applied(promise.current, call.writes),
      };
    case 'flush':
    case 'reopen':
      return { ...promise, durable: promise.current, since: [] };
    case 'startCycle': {
      const swaps = new Map(promise.swaps);
      swaps.set(cycle + 1, promise.current);
      return { ...promise, durable: promise.current, since: [], swaps };
    }
    case 'transferRegions':
    case 'completeCycle':
      return promise;
  }
}
