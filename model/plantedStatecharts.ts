// Broken copies of the model's statechart, planted by tests to show that a check
// catches what each breaks. Never used to judge anything.

import { createMachine, transition } from 'xstate';
import type { AnyStateMachine } from 'xstate';
import { replicationMachine } from './machine.ts';
import { stateValueOf } from './transitions.ts';
import type { ModelSnapshot, Statechart } from './transitions.ts';

type MachineConfig = typeof replicationMachine.config;
type StatesConfig = NonNullable<MachineConfig['states']>;

function machineWith(states: StatesConfig): AnyStateMachine {
  const config = { ...replicationMachine.config, states };
  return createMachine(config as MachineConfig, replicationMachine.implementations) as unknown as AnyStateMachine;
}

/** A statechart driven like the model's (its snapshots stand for model snapshots; no coverage). */
export function statechartOf(machine: AnyStateMachine): Statechart<ModelSnapshot> {
  return {
    snapshotOf: (state) =>
      machine.resolveState({ value: stateValueOf(state), context: { ...state, rejection: null } }) as ModelSnapshot,
    step: (snapshot, op) => ({ snapshot: transition(machine, snapshot, op)[0] as ModelSnapshot, taken: [] }),
  };
}

/** Recovery of a crashed cycle goes to idle (its context still comes from the right rule). */
export function recoveryToIdleStatechart(): Statechart<ModelSnapshot> {
  const states = replicationMachine.config.states!;
  const crashed = states.crashed!;
  const whileReplicating = { on: { recover: { target: '#cowmap.idle', actions: 'recover' } } };
  return statechartOf(
    machineWith({ ...states, crashed: { ...crashed, states: { ...crashed.states, whileReplicating } } }),
  );
}

/**
 * A transfer while idle rejected with E_NOT_CURRENT where the rules say E_PHASE:
 * the statechart's reject action finds the disagreement and throws a ModelError.
 */
export function idleTransferNotCurrentStatechart(): Statechart<ModelSnapshot> {
  const states = replicationMachine.config.states!;
  const idle = states.idle!;
  const transfer = [
    { guard: 'regionOutOfRange', actions: { type: 'reject', params: { code: 'E_RANGE' } } },
    { actions: { type: 'reject', params: { code: 'E_NOT_CURRENT' } } },
  ];
  return statechartOf(machineWith({ ...states, idle: { ...idle, on: { ...idle.on, transfer } } } as StatesConfig));
}

/** Completion without the far side's commit: the primary's step alone, D left as it was. */
export function completionWithoutCommitStatechart(): Statechart<ModelSnapshot> {
  const states = replicationMachine.config.states!;
  const replicating = states.replicating!;
  const drained = { on: { completeCycle: { target: '#cowmap.idle', actions: 'clearCycle' } } };
  return statechartOf(
    machineWith({
      ...states,
      replicating: { ...replicating, states: { ...replicating.states, drained } },
    } as StatesConfig),
  );
}
