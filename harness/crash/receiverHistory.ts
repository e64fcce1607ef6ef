// The seeded histories of the receiver's crash exploration (receiverCrashes.ts): what
// a primary sends a receiver's store over NBD (impl/remote/controlBlock.ts), cycle
// after cycle: the start signal, batches of region writes (whole regions, byte ranges
// inside one, rewrites of a region already written this cycle, zero ranges), each
// batch's control block and flush, the complete signal and its flush; a primary
// that restarts and resends what no flush covered; a cycle abandoned half way (the
// next one drops its journal); the receiver restarted between calls. Beside each
// step, the model's promise: what a crash inside it may leave, and what the primary
// would resend after it.

import {
  exportSizeOf,
  controlOffsetOf,
  type ControlState,
  encodeControlBlock,
} from '../../impl/remote/controlBlock.ts';
import type { ReplicaIdentity } from '../../impl/replica.ts';

export type ReceiverStep =
  | { readonly kind: 'control'; readonly cycle: number; readonly state: ControlState; readonly bytes: Uint8Array }
  | { readonly kind: 'write'; readonly offset: number; readonly bytes: Uint8Array }
  | { readonly kind: 'zeroes'; readonly offset: number; readonly length: number }
  | { readonly kind: 'flush' }
  /** The receiver closed and opened again (a clean restart: nothing synced by it). */
  | { readonly kind: 'reopen' };

/** What a crash inside a step (or after the last one) may leave, and how the primary goes on. */
export interface ReceiverPromise {
  /** The consistent image (the whole export) of the last commit whose complete signal returned. */
  readonly committed: Uint8Array;
  /** Its cycle (status().completedCycle). */
  readonly committedCycle: number;
  /** The image the step commits, when it is a complete signal: a crash inside it may leave this instead. */
  readonly inflight: Uint8Array | null;
  /** The export as the primary has sent it once the step was issued (the running cycle's writes over the image). */
  readonly latest: Uint8Array;
  /** The cycle the primary resumes after a crash (the one open once the step was issued), or null. */
  readonly resumeCycle: number | null;
  /** Its writes no returned flush covered, the step itself included: the primary sends them again. */
  readonly resend: readonly ReceiverStep[];
}

export interface ReceiverHistory {
  readonly seed: number;
  readonly identity: ReplicaIdentity;
  readonly exportSize: number;
  readonly steps: readonly ReceiverStep[];
  /** promises[i]: a crash inside step i; promises[steps.length]: after the last step. */
  readonly promises: readonly ReceiverPromise[];
  /** Greater than every cycle of the history: the follow-up cycle after recovery. */
  readonly nextCycle: number;
  /** The store's journal bound for this history: half of them small, so that their cycles compact. */
  readonly journalBytesMax: number | undefined;
}

/** A small xorshift generator: the same history for the same seed on every run. */
export function seededRandom(seed: number): () => number {
  let state = (seed * 2654435761) >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

export function randomBytes(next: () => number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  const base = Math.floor(next() * 256);
  const stride = 1 + Math.floor(next() * 250);
  for (let i = 0; i < length; i++) bytes[i] = (base + i * stride) & 0xff;
  return bytes;
}

export function controlStep(
  identity: ReplicaIdentity,
  cycle: number,
  state: ControlState,
  batch: number,
): ReceiverStep {
  const bytes = encodeControlBlock({ ...identity, state, cycle, swapTimeMs: 1_000_000 + cycle, batch });
  return { kind: 'control', cycle, state, bytes };
}

/** Sets the step's bytes in an image of the export (the control region included). */
export function applyStep(image: Uint8Array, step: ReceiverStep, controlOffset: number): void {
  if (step.kind === 'control') image.set(step.bytes, controlOffset);
  else if (step.kind === 'write') image.set(step.bytes, step.offset);
  else if (step.kind === 'zeroes') image.fill(0, step.offset, step.offset + step.length);
}

/** The model: what the primary sent and what the receiver has committed, updated step by step. */
class PrimaryModel {
  committed: Uint8Array;
  committedCycle = 0;
  latest: Uint8Array;
  open: number | null = null;
  unflushed: ReceiverStep[] = [];
  readonly steps: ReceiverStep[] = [];
  readonly promises: ReceiverPromise[] = [];

  constructor(
    readonly identity: ReplicaIdentity,
    claimed: Uint8Array,
  ) {
    this.committed = claimed;
    this.latest = claimed.slice();
  }

  add(step: ReceiverStep): void {
    const controlOffset = controlOffsetOf(this.identity);
    const startsCycle = step.kind === 'control' && step.state === 'sending' && step.cycle !== this.open;
    if (startsCycle) {
      // A start of another cycle drops the uncommitted journal: the image is the committed one again.
      this.latest = this.committed.slice();
      this.unflushed = [];
      this.open = step.cycle;
    }
    applyStep(this.latest, step, controlOffset);
    const commits = step.kind === 'control' && step.state === 'complete';
    const carried = step.kind === 'write' || step.kind === 'zeroes' || step.kind === 'control';
    this.promises.push({
      committed: this.committed,
      committedCycle: this.committedCycle,
      inflight: commits ? this.latest.slice() : null,
      latest: this.latest.slice(),
      resumeCycle: this.open,
      resend: carried && !commits ? [...this.unflushed, step] : [...this.unflushed],
    });
    this.steps.push(step);
    if (commits) {
      this.committed = this.latest.slice();
      this.committedCycle = step.cycle;
      this.open = null;
      this.unflushed = [];
    } else if (step.kind === 'flush') this.unflushed = [];
    else if (carried) this.unflushed.push(step);
  }

  end(): void {
    this.promises.push({
      committed: this.committed,
      committedCycle: this.committedCycle,
      inflight: null,
      latest: this.latest.slice(),
      resumeCycle: this.open,
      resend: [...this.unflushed],
    });
  }
}

/** The primary's claim (docs/protocol.md section 10): cycle 0 is zeros over the image, complete. */
export function claimSteps(identity: ReplicaIdentity): ReceiverStep[] {
  return [
    controlStep(identity, 0, 'sending', 0),
    { kind: 'zeroes', offset: 0, length: controlOffsetOf(identity) },
    controlStep(identity, 0, 'complete', 0),
    { kind: 'flush' },
  ];
}

/** The export after the claim: zeros, then cycle 0's complete block. */
export function claimedImage(identity: ReplicaIdentity): Uint8Array {
  const image = new Uint8Array(exportSizeOf(identity));
  for (const step of claimSteps(identity)) applyStep(image, step, controlOffsetOf(identity));
  return image;
}

/** A write of a batch: a whole region, a byte range inside one, or zeros over a range. */
function batchWrite(next: () => number, identity: ReplicaIdentity, written: number[]): ReceiverStep {
  const { regions, regionSize } = identity;
  // A rewrite of a region this cycle wrote already, with other bytes, a third of the time.
  const region =
    written.length > 0 && next() < 0.33 ? written[Math.floor(next() * written.length)]! : Math.floor(next() * regions);
  written.push(region);
  const choice = next();
  if (choice < 0.5) return { kind: 'write', offset: region * regionSize, bytes: randomBytes(next, regionSize) };
  const start = Math.floor(next() * (regionSize - 1));
  const length = 1 + Math.floor(next() * (regionSize - start - 1));
  if (choice < 0.85) return { kind: 'write', offset: region * regionSize + start, bytes: randomBytes(next, length) };
  return { kind: 'zeroes', offset: region * regionSize + start, length };
}

/** One cycle as the primary sends it; returns whether it completed. */
function addCycle(model: PrimaryModel, next: () => number, cycle: number): boolean {
  const identity = model.identity;
  const written: number[] = [];
  const batches = 1 + Math.floor(next() * 3);
  for (let batch = 0; batch < batches; batch++) {
    model.add(controlStep(identity, cycle, 'sending', batch));
    const writes = 1 + Math.floor(next() * 3);
    for (let i = 0; i < writes; i++) model.add(batchWrite(next, identity, written));
    const after = next();
    if (after < 0.1) model.add({ kind: 'reopen' });
    else if (after < 0.2) {
      // The primary restarts: its start block again, then what no flush covered.
      const resend = [...model.unflushed];
      model.add(controlStep(identity, cycle, 'sending', batch));
      for (const step of resend) if (step.kind !== 'control') model.add(step);
    }
    if (next() < 0.85) model.add({ kind: 'flush' });
  }
  if (next() < 0.15) return false;
  if (model.unflushed.length > 0) model.add({ kind: 'flush' });
  model.add(controlStep(identity, cycle, 'complete', batches));
  model.add({ kind: 'flush' });
  if (next() < 0.15) model.add({ kind: 'reopen' });
  return true;
}

export function makeReceiverHistory(seed: number, cycleCount = 3): ReceiverHistory {
  const next = seededRandom(seed);
  const identity: ReplicaIdentity = {
    volumeId: randomBytes(next, 16),
    regions: 3 + Math.floor(next() * 3),
    regionSize: next() < 0.5 ? 512 : 1024,
  };
  const model = new PrimaryModel(identity, claimedImage(identity));
  let cycle = 1;
  for (let i = 0; i < cycleCount; i++) {
    // An abandoned cycle's number is used again a third of the time (a primary that restarted it).
    const completed = addCycle(model, next, cycle);
    if (completed || next() < 0.67) cycle++;
  }
  model.end();
  const exportSize = exportSizeOf(identity);
  return {
    seed,
    identity,
    exportSize,
    steps: model.steps,
    promises: model.promises,
    nextCycle: cycle + 1,
    // Two exports hold the live bytes of a cycle (at most one export), their headers and the next record.
    journalBytesMax: seed % 2 === 1 ? undefined : 2 * exportSize,
  };
}
