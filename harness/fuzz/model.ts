// The small model fast-check plans the fuzz commands from (harness/fuzz/command.ts
// runs them): what it keeps of the system and how each step run changes it.

import type { ScenarioStep } from '../scenario.ts';
import type { SutOp } from '../sut/systemUnderTest.ts';
import { RunContents } from '../regionData.ts';
import type { Generation } from './generation.ts';

/**
 * What fast-check keeps of the system, to plan commands: whether the volume is
 * down, and an over-estimate of the maps: a superset of C and of X, the regions
 * of C known to be sent, and the phase where it is known. A crash inside an operation
 * makes the system's outcome uncertain (the swap may or may not have happened),
 * so the sets only grow there and the phase becomes 'unknown'; a cycle command
 * then still drains the cycle by sending every region of the superset (the
 * others are answered E_NOT_CURRENT, which the oracle checks too). It only
 * plans: the oracle judges every step against the real model.
 */
export interface FuzzModel {
  crashed: boolean;
  phase: 'idle' | 'replicating' | 'unknown';
  /** Contains C. */
  readonly current: Set<number>;
  currentExact: boolean;
  /** Contains X. */
  readonly next: Set<number>;
  nextExact: boolean;
  /** Regions transferred since the swap or the last recovery while the phase was known to be replicating: those of C among them were sent. */
  readonly sent: Set<number>;
  /** What the run wrote, for near-copies. */
  readonly contents: RunContents;
}

export function freshModel(regionSize: number): FuzzModel {
  return {
    crashed: false,
    phase: 'idle',
    current: new Set(),
    currentExact: true,
    next: new Set(),
    nextExact: true,
    sent: new Set(),
    contents: new RunContents(regionSize),
  };
}

function replaceSet(set: Set<number>, values: Iterable<number>): void {
  const copy = [...values];
  set.clear();
  for (const value of copy) set.add(value);
}

function isSubset(small: ReadonlySet<number>, large: ReadonlySet<number>): boolean {
  for (const value of small) if (!large.has(value)) return false;
  return true;
}

/** The swap, seen from the model: certain from idle, a maybe from an unknown phase. */
function trackSwap(model: FuzzModel, certain: boolean): void {
  if (certain) {
    replaceSet(model.current, model.next);
    model.currentExact = model.nextExact;
    model.next.clear();
    model.nextExact = true;
  } else {
    for (const region of model.next) model.current.add(region);
    model.currentExact = false;
    model.nextExact = false;
  }
  model.sent.clear();
}

/** An operation that ran to its answer (accepted or rejected). */
function trackOp(model: FuzzModel, op: SutOp, regions: number, regionSize: number): void {
  if (model.crashed) return; // E_PHASE: nothing changes
  switch (op.type) {
    case 'write':
      if (op.region >= 0 && op.region < regions && op.data.length === regionSize) model.next.add(op.region);
      return;
    case 'startCycle':
      if (model.phase !== 'replicating') trackSwap(model, model.phase === 'idle');
      model.phase = 'replicating';
      return;
    case 'transfer':
      if (model.phase === 'replicating' && model.current.has(op.region)) model.sent.add(op.region);
      return;
    case 'completeCycle':
      if (model.phase === 'replicating' && isSubset(model.current, model.sent)) {
        model.phase = 'idle';
        model.current.clear();
        model.currentExact = true;
        model.sent.clear();
      } else if (model.phase === 'replicating' && !model.currentExact) {
        model.phase = 'unknown';
      }
      return;
    case 'read':
      return;
  }
}

/** An operation with a crash inside: whatever of it reached the disk may or may not survive. */
function trackCrashInside(model: FuzzModel, op: SutOp, regions: number, regionSize: number): void {
  if (
    op.type === 'write' &&
    op.region >= 0 &&
    op.region < regions &&
    op.data.length === regionSize &&
    !model.next.has(op.region)
  ) {
    model.next.add(op.region);
    model.nextExact = false;
  } else if (op.type === 'startCycle' && model.phase !== 'replicating') {
    trackSwap(model, false);
    model.phase = 'unknown';
  } else if (
    op.type === 'completeCycle' &&
    model.phase === 'replicating' &&
    (!model.currentExact || isSubset(model.current, model.sent))
  ) {
    model.currentExact = false;
    model.phase = 'unknown';
  }
  model.crashed = true;
}

export function trackStep(model: FuzzModel, step: ScenarioStep, generation: Generation): void {
  switch (step.kind) {
    case 'op':
      trackOp(model, step.op, generation.regions, generation.regionSize);
      return;
    case 'crashInside':
      trackCrashInside(model, step.op, generation.regions, generation.regionSize);
      return;
    case 'crash':
      model.crashed = true;
      return;
    case 'recover':
      if (model.crashed) model.sent.clear();
      model.crashed = false;
      return;
  }
}
