// The statechart of docs/protocol.md section 2: the map swap and the copy-on-write rules.
//
// It reads like the spec's table. Every rule is a named, guarded transition whose
// actions are the pure functions of rules.ts; every rejection is an explicit
// transition that keeps the state and records its error code in `rejection`, so
// that transition coverage counts the negative cases too.
//
// States: idle; replicating (sending: some region of C not yet sent; drained: every
// region of C sent since the swap or the last recovery); crashed (whileIdle or
// whileReplicating: the phase that the durable state holds, which recovery resumes).

import { assign, setup } from 'xstate';
import { ModelError } from './modelError.ts';
import * as rules from './rules.ts';
import type { Geometry, ModelState, Op, Rejection, RejectCode } from './types.ts';

export type ModelContext = ModelState & { readonly rejection: Rejection | null };

export interface MachineInput {
  readonly geometry: Geometry;
  /** The content of a region of zero bytes (the initial content of P and S). */
  readonly zero: string;
}

function regionOf(op: Op): number {
  if (!('region' in op)) throw new ModelError(`model: ${op.type} carries no region`);
  return op.region;
}

/** Applies a rule of rules.ts and clears the last rejection: the operation was accepted. */
function accepted(rule: (state: ModelState, op: Op) => ModelState) {
  return assign<ModelContext, Op, undefined, Op, never>(({ context, event }) => ({
    ...rule(context, event),
    rejection: null,
  }));
}

export const replicationMachine = setup({
  types: {
    context: {} as ModelContext,
    events: {} as Op,
    input: {} as MachineInput,
  },
  guards: {
    regionOutOfRange: ({ context, event }) => !('region' in event) || !rules.regionInRange(context, event.region),
    dataWrongSize: ({ context, event }) => event.type === 'write' && !rules.dataSizeOk(context, event.size),
    firstWriteThisCycle: ({ context, event }) => rules.firstWriteThisCycle(context, regionOf(event)),
    notInCurrentMap: ({ context, event }) => !rules.inCurrentMap(context, regionOf(event)),
    everyCurrentRegionSent: ({ context }) => rules.everyCurrentRegionSent(context),
  },
  actions: {
    preserveRegion: accepted((state, op) => rules.preserveRegion(state, regionOf(op))),
    writePrimary: accepted((state, op) => rules.writePrimary(state, regionOf(op), op.type === 'write' ? op.data : '')),
    markNext: accepted((state, op) => rules.markNext(state, regionOf(op))),
    swapMaps: accepted((state) => rules.swapMaps(state)),
    sendRegion: accepted((state, op) => rules.sendRegion(state, regionOf(op))),
    commitFarSide: accepted((state) => rules.commitFarSide(state)),
    clearCycle: accepted((state) => rules.clearCycle(state)),
    crash: accepted((state) => rules.crash(state)),
    recover: accepted((state) => rules.recover(state)),
    readRegion: accepted((state) => state),
    // A rejection changes nothing but the record of why. The code the statechart
    // names must be the code the rules give: if not, the model itself is broken.
    reject: assign(({ context, event }, params: { code: RejectCode }) => {
      const rejection = rules.judge(context, event);
      if (rejection === null || rejection.code !== params.code) {
        throw new ModelError(
          `model: the statechart rejects ${event.type} with ${params.code}, the rules say ${rejection?.code ?? 'allowed'}`,
        );
      }
      return { rejection };
    }),
  },
}).createMachine({
  id: 'cowmap',
  context: ({ input }) => ({ ...rules.initialState(input.geometry, input.zero), rejection: null }),
  initial: 'idle',
  states: {
    idle: {
      on: {
        write: [
          { guard: 'regionOutOfRange', actions: { type: 'reject', params: { code: 'E_RANGE' } } },
          { guard: 'dataWrongSize', actions: { type: 'reject', params: { code: 'E_SIZE' } } },
          { actions: ['writePrimary', 'markNext'] },
        ],
        read: [
          { guard: 'regionOutOfRange', actions: { type: 'reject', params: { code: 'E_RANGE' } } },
          { actions: 'readRegion' },
        ],
        startCycle: { target: 'replicating', actions: 'swapMaps' },
        transfer: [
          { guard: 'regionOutOfRange', actions: { type: 'reject', params: { code: 'E_RANGE' } } },
          { actions: { type: 'reject', params: { code: 'E_PHASE' } } },
        ],
        completeCycle: { actions: { type: 'reject', params: { code: 'E_PHASE' } } },
        crash: { target: 'crashed.whileIdle', actions: 'crash' },
        recover: { actions: { type: 'reject', params: { code: 'E_PHASE' } } },
      },
    },
    replicating: {
      initial: 'sending',
      on: {
        write: [
          { guard: 'regionOutOfRange', actions: { type: 'reject', params: { code: 'E_RANGE' } } },
          { guard: 'dataWrongSize', actions: { type: 'reject', params: { code: 'E_SIZE' } } },
          { guard: 'firstWriteThisCycle', actions: ['preserveRegion', 'writePrimary', 'markNext'] },
          { actions: ['writePrimary', 'markNext'] },
        ],
        read: [
          { guard: 'regionOutOfRange', actions: { type: 'reject', params: { code: 'E_RANGE' } } },
          { actions: 'readRegion' },
        ],
        startCycle: { actions: { type: 'reject', params: { code: 'E_PHASE' } } },
        transfer: [
          { guard: 'regionOutOfRange', actions: { type: 'reject', params: { code: 'E_RANGE' } } },
          { guard: 'notInCurrentMap', actions: { type: 'reject', params: { code: 'E_NOT_CURRENT' } } },
          { actions: 'sendRegion' },
        ],
        crash: { target: 'crashed.whileReplicating', actions: 'crash' },
        recover: { actions: { type: 'reject', params: { code: 'E_PHASE' } } },
      },
      states: {
        sending: {
          always: { guard: 'everyCurrentRegionSent', target: 'drained' },
          on: {
            completeCycle: { actions: { type: 'reject', params: { code: 'E_NOT_DRAINED' } } },
          },
        },
        drained: {
          on: {
            // The far side commits the cycle (D := S) before the primary's durable completion step.
            completeCycle: { target: '#cowmap.idle', actions: ['commitFarSide', 'clearCycle'] },
          },
        },
      },
    },
    crashed: {
      // Never entered on its own: a crash targets the child that names the durable phase.
      initial: 'whileIdle',
      on: {
        write: { actions: { type: 'reject', params: { code: 'E_PHASE' } } },
        read: { actions: { type: 'reject', params: { code: 'E_PHASE' } } },
        startCycle: { actions: { type: 'reject', params: { code: 'E_PHASE' } } },
        transfer: { actions: { type: 'reject', params: { code: 'E_PHASE' } } },
        completeCycle: { actions: { type: 'reject', params: { code: 'E_PHASE' } } },
        crash: { actions: 'crash' },
      },
      states: {
        whileIdle: {
          on: { recover: { target: '#cowmap.idle', actions: 'recover' } },
        },
        whileReplicating: {
          on: { recover: { target: '#cowmap.replicating', actions: 'recover' } },
        },
      },
    },
  },
});

export type ReplicationMachine = typeof replicationMachine;
