// The judgement of one crash of the buffered-writes exploration (bufferedWrites.ts):
// the volume recovered from the files the crash left, then checked against what
// the history promised before the crash (bufferedHistory.ts) and against the
// invariants of docs/protocol.md section 3 that the volume exposes. Returns the
// problems found, each one line; none when the outcome is allowed.
//
// - P: in a power crash (whole writes or torn per sector) each byte of P is its
//   value at the last durability point that returned (flush, startCycle, close)
//   or the value of some write that returned after it or was in flight; in a
//   process crash (the page cache survives) P is every returned write, plus a
//   prefix of the writes of a writeMany in flight (they are pwritten in order).
// - The cycle: while replicating, every region where P and S differ is in C or X;
//   the cycle can be finished (every region of C sent, then completion) and S then
//   equals P@swap of its cycle number; while idle S equals it already.
// - INV-COVER once idle: every region where P and S differ has its next bit set.
// - One more cycle makes S equal P.

import { bytesEqual } from '../../impl/checksum.ts';
import type { ByteWrite, ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import type { FaultMode, VolumeClass } from '../types.ts';
import type { MemoryStorage } from '../storage/memoryStorage.ts';
import { applied, historyDir, type PrimaryPromise } from './bufferedHistory.ts';

/** What a crash run left for the judge. */
export interface CrashOutcome {
  readonly fault: FaultMode;
  /** The files after the crash. */
  readonly files: MemoryStorage;
  /** The promise before the call the crash interrupted (or at the end, when the history completed). */
  readonly before: PrimaryPromise;
  /** The promise after that call: its swaps name the cycle a startCycle in flight may have begun. */
  readonly after: PrimaryPromise;
  /** The writes of a writeMany in flight at the crash, else none. */
  readonly inFlight: readonly ByteWrite[];
}

/** Recovers the volume from `outcome.files` and lists what is wrong with it. */
export function judgeOutcome(outcome: CrashOutcome, volumeClass: VolumeClass): string[] {
  let volume: ReplicatedVolume;
  try {
    volume = volumeClass.open(outcome.files, historyDir);
  } catch (error) {
    return [`recovery failed: ${describe(error)}`];
  }
  const problems: string[] = [];
  try {
    problems.push(...primaryProblems(volume.read(0, volume.sizeBytes), outcome));
    problems.push(...cycleProblems(volume, outcome.after.swaps));
  } catch (error) {
    problems.push(`the recovered volume failed: ${describe(error)}`);
  } finally {
    volume.close();
  }
  return problems;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** P against the promise (see the header). */
export function primaryProblems(got: Uint8Array, outcome: CrashOutcome): string[] {
  const { before, inFlight } = outcome;
  if (outcome.fault === 'process') {
    for (let prefix = 0; prefix <= inFlight.length; prefix++) {
      if (bytesEqual(got, applied(before.current, inFlight.slice(0, prefix)))) return [];
    }
    const byte = firstDifference(got, before.current);
    return [
      `after a kill: P is not every returned write plus a prefix of the batch in flight ` +
        `(byte ${byte} is ${got[byte]}, the returned writes left ${before.current[byte]})`,
    ];
  }
  const candidates = [...before.since, ...inFlight];
  for (let byte = 0; byte < got.length; byte++) {
    const value = got[byte]!;
    if (value === before.durable[byte]) continue;
    const fromWrite = candidates.some(
      ({ offset, bytes }) => byte >= offset && byte < offset + bytes.length && bytes[byte - offset] === value,
    );
    if (fromWrite) continue;
    return [
      `${outcome.fault} crash: P byte ${byte} is ${value}, neither its value at the last flush, swap or close ` +
        `(${before.durable[byte]}) nor that of a write since (a flushed write lost, or bytes from nowhere)`,
    ];
  }
  return [];
}

/** The cycle finished and one more run, S against P@swap and P (see the header). */
function cycleProblems(volume: ReplicatedVolume, swaps: ReadonlyMap<number, Uint8Array>): string[] {
  const problems: string[] = [];
  const cycle = volume.cycle;
  const atSwap = swaps.get(cycle);
  if (atSwap === undefined) return [`recovery came back at cycle ${cycle}, which the history never started`];
  if (volume.phase === 'replicating') {
    const uncovered = differingRegions(volume).filter((r) => !volume.hasCurrent(r) && !volume.hasNext(r));
    if (uncovered.length > 0) problems.push(`replicating: P differs from S outside C and X in ${list(uncovered)}`);
    volume.transferRegions(volume.currentRegions());
    volume.completeCycle();
  }
  const notAtSwap = regionsWhere(
    volume,
    (r, size) => !bytesEqual(volume.read(r * size, size, 'secondary'), slice(atSwap, r, size)),
  );
  if (notAtSwap.length > 0) problems.push(`cycle ${cycle} completed: S is not P@swap in ${list(notAtSwap)}`);
  const uncovered = differingRegions(volume).filter((r) => !volume.hasNext(r));
  if (uncovered.length > 0) problems.push(`INV-COVER: P differs from S with the next bit clear in ${list(uncovered)}`);
  volume.startCycle();
  volume.transferRegions(volume.currentRegions());
  volume.completeCycle();
  const behind = differingRegions(volume);
  if (behind.length > 0) problems.push(`one more cycle left S behind P in ${list(behind)}`);
  return problems;
}

/** The regions where P and S differ. */
function differingRegions(volume: ReplicatedVolume): number[] {
  return regionsWhere(
    volume,
    (r, size) => !bytesEqual(volume.read(r * size, size), volume.read(r * size, size, 'secondary')),
  );
}

function regionsWhere(volume: ReplicatedVolume, holds: (region: number, regionSize: number) => boolean): number[] {
  const regions: number[] = [];
  for (let region = 0; region < volume.regions; region++) if (holds(region, volume.regionSize)) regions.push(region);
  return regions;
}

function slice(bytes: Uint8Array, region: number, regionSize: number): Uint8Array {
  return bytes.subarray(region * regionSize, (region + 1) * regionSize);
}

function list(regions: readonly number[]): string {
  return `region(s) ${regions.join(', ')}`;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length;
}
