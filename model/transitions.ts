// Stable transition ids, derived from the machine definition (no hand-kept list),
// for the coverage report and the gate. An id reads
//   <state path>:<event>[<guard>] <code>
// e.g. `replicating:write[firstWriteThisCycle]`, `idle:transfer E_PHASE`,
// `replicating.sending:always[everyCurrentRegionSent]`.

import { getMicrosteps, transition } from 'xstate';
import type { AnyMachineSnapshot, AnyStateNode, AnyTransitionDefinition, SnapshotFrom } from 'xstate';
import { replicationMachine } from './machine.ts';
import { everyCurrentRegionSent } from './rules.ts';
import type { ModelState, Op } from './types.ts';
import type { StepFunction } from './invariants.ts';

export type ModelSnapshot = SnapshotFrom<typeof replicationMachine>;

interface ActionLike {
  readonly type?: unknown;
  readonly params?: { readonly code?: unknown };
}

function statePath(node: AnyStateNode): string {
  return node.path.length === 0 ? node.machine.id : node.path.join('.');
}

function guardName(definition: AnyTransitionDefinition): string | null {
  const guard: unknown = definition.guard;
  if (guard === undefined) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && guard !== null && typeof (guard as { type?: unknown }).type === 'string') {
    return (guard as { type: string }).type;
  }
  throw new Error(`model: transition ${statePath(definition.source)}:${definition.eventType} has an unnamed guard`);
}

function rejectCode(definition: AnyTransitionDefinition): string | null {
  for (const action of definition.actions as readonly unknown[]) {
    const like = action as ActionLike;
    if (
      typeof action === 'object' &&
      action !== null &&
      like.type === 'reject' &&
      typeof like.params?.code === 'string'
    ) {
      return like.params.code;
    }
  }
  return null;
}

export function transitionId(definition: AnyTransitionDefinition): string {
  const event = definition.eventType === '' ? 'always' : definition.eventType;
  const guard = guardName(definition);
  const code = rejectCode(definition);
  return `${statePath(definition.source)}:${event}${guard === null ? '' : `[${guard}]`}${code === null ? '' : ` ${code}`}`;
}

function allStateNodes(root: AnyStateNode): AnyStateNode[] {
  const nodes: AnyStateNode[] = [];
  const pending: AnyStateNode[] = [root];
  const nodesMax = 1000;
  while (pending.length > 0) {
    if (nodes.length >= nodesMax) throw new Error('model: more state nodes than expected');
    const node = pending.shift()!;
    nodes.push(node);
    pending.push(...Object.values(node.states));
  }
  return nodes;
}

export interface TransitionInfo {
  readonly id: string;
  readonly source: string;
  readonly event: string;
  readonly guard: string | null;
  readonly rejects: string | null;
  readonly targets: readonly string[];
  readonly definition: AnyTransitionDefinition;
}

function describe(definition: AnyTransitionDefinition): TransitionInfo {
  return {
    id: transitionId(definition),
    source: statePath(definition.source),
    event: definition.eventType === '' ? 'always' : definition.eventType,
    guard: guardName(definition),
    rejects: rejectCode(definition),
    targets: (definition.target ?? []).map((node: AnyStateNode) => statePath(node)),
    definition,
  };
}

let transitionsCached: readonly TransitionInfo[] | null = null;

/** Every transition of the machine, in definition order, with its stable id. */
export function allTransitions(): readonly TransitionInfo[] {
  if (transitionsCached !== null) return transitionsCached;
  const found: TransitionInfo[] = [];
  for (const node of allStateNodes(replicationMachine.root)) {
    for (const definitions of node.transitions.values()) {
      for (const definition of definitions) found.push(describe(definition));
    }
    for (const definition of node.always ?? []) found.push(describe(definition));
  }
  const ids = new Set(found.map((info) => info.id));
  if (ids.size !== found.length) throw new Error('model: two transitions derive the same id');
  transitionsCached = found;
  return found;
}

/**
 * One step of the statechart with the ids of the transitions it took: the one the
 * event selected, then any eventless ones that followed (a transfer that drains C
 * takes `replicating.sending:always[everyCurrentRegionSent]`).
 */
export function stepMachine(snapshot: ModelSnapshot, event: Op): { snapshot: ModelSnapshot; taken: string[] } {
  const selected = replicationMachine.getTransitionData(snapshot, event);
  const taken = selected.map((definition) => transitionId(definition));
  const microsteps = getMicrosteps(replicationMachine, snapshot, event);
  const eventless = eventlessTransitions();
  for (let index = 1; index < microsteps.length; index++) {
    const before = microsteps[index - 1]![0];
    const after = microsteps[index]![0];
    for (const info of eventless) {
      const sourceActive = before._nodes.includes(info.definition.source);
      const targetActive = (info.definition.target ?? []).every((node: AnyStateNode) => after._nodes.includes(node));
      if (sourceActive && targetActive) taken.push(info.id);
    }
  }
  // The macrostep ends in the last microstep's snapshot; every event of this machine
  // selects a transition (rejections included), so there is always one.
  const last = microsteps[microsteps.length - 1];
  const next = last === undefined ? transition(replicationMachine, snapshot, event)[0] : last[0];
  return { snapshot: next, taken };
}

let eventlessCached: readonly TransitionInfo[] | null = null;

function eventlessTransitions(): readonly TransitionInfo[] {
  eventlessCached ??= allTransitions().filter((info) => info.event === 'always');
  return eventlessCached;
}

export type ModelStateValue =
  | 'idle'
  | { readonly replicating: 'sending' | 'drained' }
  | { readonly crashed: 'whileIdle' | 'whileReplicating' };

/** The statechart state that holds a model state: what the rules say the statechart must be in. */
export function stateValueOf(state: ModelState): ModelStateValue {
  if (state.crashed) return { crashed: state.phase === 'idle' ? 'whileIdle' : 'whileReplicating' };
  if (state.phase === 'idle') return 'idle';
  return { replicating: everyCurrentRegionSent(state) ? 'drained' : 'sending' };
}

/** The statechart snapshot that holds a model state (for continuing from a crash outcome). */
export function snapshotOf(state: ModelState): ModelSnapshot {
  return replicationMachine.resolveState({ value: stateValueOf(state), context: { ...state, rejection: null } });
}

/** The model state a snapshot holds. */
export function stateOf(snapshot: ModelSnapshot): ModelState {
  const { rejection: _rejection, ...state } = snapshot.context;
  return state;
}

/**
 * A statechart as the agreement check and the oracle drive it: a snapshot holding
 * a model state, and one step. The model's is `modelStatechart`; a test may plant a broken one.
 */
export interface Statechart<Snapshot extends AnyMachineSnapshot = AnyMachineSnapshot> {
  snapshotOf(state: ModelState): Snapshot;
  /** One event; `taken` is the ids of the transitions it took (for coverage). */
  step(snapshot: Snapshot, op: Op): { readonly snapshot: Snapshot; readonly taken: readonly string[] };
}

export const modelStatechart: Statechart<ModelSnapshot> = { snapshotOf, step: stepMachine };

/**
 * The statechart as a step function of model states: what LIVENESS looks ahead
 * with when the statechart, not the rules, is under test (a planted one included).
 */
export function stepFunctionOf(chart: Statechart<ModelSnapshot>): StepFunction {
  return (state, op) => {
    const after = chart.step(chart.snapshotOf(state), op).snapshot;
    const rejection = after.context.rejection;
    return rejection === null ? { ok: true, state: stateOf(after) } : { ok: false, state, rejection };
  };
}
