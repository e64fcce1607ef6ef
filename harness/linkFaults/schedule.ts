// A fault schedule for the link to an NBD secondary: which request of the
// transmission phase each fault hits, drawn from a seed (harness/prng.ts) so that a
// schedule is replayed exactly from its seed. The faults' meaning for what the far
// side holds is the crash model at the top of faultProxy.ts.

import { Prng } from '../prng.ts';
import { EIO, ENOSPC } from '../../impl/nbd/protocol.ts';

/** The requests a trigger counts: every request, or only those of one command. */
export const triggerCommands = ['ANY', 'READ', 'WRITE', 'FLUSH'] as const;
export type TriggerCommand = (typeof triggerCommands)[number];

/**
 * Fires on the `index`-th request (0-based) of `command` that reaches the proxy in
 * the transmission phase, counted over the proxy's life across connections.
 */
export interface Trigger {
  readonly command: TriggerCommand;
  readonly index: number;
}

export const faultKinds = [
  'refuse',
  'dropBefore',
  'dropAfter',
  'dropMidPayload',
  'errorReply',
  'delay',
  'restart',
  'powerLoss',
  'tornPowerLoss',
  'mark',
  'restoreOlder',
] as const;
export type FaultKind = (typeof faultKinds)[number];

export type Fault =
  /** The connection dropped and the listener closed for `durationMs`: connects are refused meanwhile. */
  | { readonly kind: 'refuse'; readonly at: Trigger; readonly durationMs: number }
  /** The connection dropped before the request is forwarded: the far side never sees it. */
  | { readonly kind: 'dropBefore'; readonly at: Trigger }
  /** The request forwarded, then the connection dropped: its reply never reaches the client. */
  | { readonly kind: 'dropAfter'; readonly at: Trigger }
  /** A WRITE's header and half its payload forwarded, then the connection dropped. */
  | { readonly kind: 'dropMidPayload'; readonly at: Trigger }
  /**
   * The reply turned into an NBD error. `forwarded`: the far side performed the
   * request and only its reply says it failed; else the proxy answers for it.
   */
  | { readonly kind: 'errorReply'; readonly at: Trigger; readonly errno: number; readonly forwarded: boolean }
  /** The replies of `count` requests from the trigger on held `delayMs` each (and those behind them). */
  | { readonly kind: 'delay'; readonly at: Trigger; readonly count: number; readonly delayMs: number }
  /** The far side killed and started again on the same files (nothing written is lost). */
  | { readonly kind: 'restart'; readonly at: Trigger }
  /** The far side killed and started again on its files as of its last successful FLUSH. */
  | { readonly kind: 'powerLoss'; readonly at: Trigger }
  /**
   * A power loss that keeps some of the writes after the last FLUSH: each WRITE
   * forwarded since it is kept or lost by a coin of `keepSeed` (a plain image only;
   * another far side loses them all, as powerLoss).
   */
  | { readonly kind: 'tornPowerLoss'; readonly at: Trigger; readonly keepSeed: number }
  /** The far side's files copied (no request in flight); a later restoreOlder puts them back. */
  | { readonly kind: 'mark'; readonly at: Trigger }
  /** The far side killed and started again on the files of the last mark (a restart without one). */
  | { readonly kind: 'restoreOlder'; readonly at: Trigger };

export interface FaultSchedule {
  readonly seed: number;
  readonly faults: readonly Fault[];
}

/** How a schedule is drawn: the requests it can hit and how many faults it holds. */
export interface ScheduleShape {
  /** Triggers are drawn in [0, requestSpan) of their command's count. */
  readonly requestSpan: number;
  readonly faultCountMax: number;
  /** The far side may lose confirmed data (restoreOlder); the primary must then notice. */
  readonly olderImages: boolean;
  /** Below the client's request timeout, or above it to make it time out. */
  readonly delayMsMax: number;
  /** Only these kinds are drawn (all when absent): a planted bug's schedules aim at the faults that show it. */
  readonly kinds?: readonly FaultKind[];
  /** The commands a trigger of any kind counts (all of triggerCommands when absent). */
  readonly commands?: readonly TriggerCommand[];
}

const errnos = [EIO, ENOSPC] as const;

function pick<T>(prng: Prng, items: readonly T[]): T {
  return items[prng.nextInt(items.length)]!;
}

function trigger(prng: Prng, command: TriggerCommand, span: number): Trigger {
  // WRITE and FLUSH are fewer than requests of every kind: their span is shorter.
  const commandSpan = command === 'ANY' ? span : Math.max(1, Math.ceil(span / 3));
  return { command, index: prng.nextInt(commandSpan) };
}

function drawFault(prng: Prng, shape: ScheduleShape): Fault[] {
  const any = () => trigger(prng, pick(prng, shape.commands ?? triggerCommands), shape.requestSpan);
  const kinds: FaultKind[] = [
    'refuse',
    'dropBefore',
    'dropAfter',
    'dropMidPayload',
    'errorReply',
    'errorReply',
    'delay',
    'restart',
    'powerLoss',
    'tornPowerLoss',
    'tornPowerLoss',
    ...(shape.olderImages ? (['restoreOlder'] as const) : []),
  ];
  const kind = pick(prng, shape.kinds ?? kinds);
  switch (kind) {
    case 'refuse':
      return [{ kind, at: any(), durationMs: 20 + prng.nextInt(200) }];
    case 'dropMidPayload':
      return [{ kind, at: trigger(prng, 'WRITE', shape.requestSpan) }];
    case 'errorReply': {
      const at = trigger(prng, pick(prng, ['WRITE', 'FLUSH'] as const), shape.requestSpan);
      return [{ kind, at, errno: pick(prng, errnos), forwarded: prng.nextBool() }];
    }
    case 'delay':
      return [{ kind, at: any(), count: 1 + prng.nextInt(4), delayMs: 1 + prng.nextInt(shape.delayMsMax) }];
    case 'restoreOlder': {
      const mark = any();
      const later = { command: 'ANY' as const, index: mark.index + 1 + prng.nextInt(shape.requestSpan) };
      return [
        { kind: 'mark', at: { command: 'ANY', index: mark.index } },
        { kind, at: later },
      ];
    }
    case 'tornPowerLoss':
      return [{ kind, at: any(), keepSeed: prng.nextUint32() }];
    case 'dropBefore':
    case 'dropAfter':
    case 'restart':
    case 'powerLoss':
      return [{ kind, at: any() }];
    case 'mark':
      throw new Error('mark is drawn with its restoreOlder');
  }
}

/** A seeded schedule of 1..faultCountMax faults (a restoreOlder brings its mark). */
export function drawSchedule(seed: number, shape: ScheduleShape): FaultSchedule {
  const prng = new Prng(seed);
  const count = 1 + prng.nextInt(shape.faultCountMax);
  const faults: Fault[] = [];
  for (let drawn = 0; drawn < count; drawn++) faults.push(...drawFault(prng, shape));
  return { seed, faults };
}

/** A fault in one line, for failure messages and logs. */
export function describeFault(fault: Fault): string {
  const at = `${fault.at.command}#${fault.at.index}`;
  switch (fault.kind) {
    case 'refuse':
      return `refuse ${fault.durationMs} ms at ${at}`;
    case 'errorReply':
      return `errno ${fault.errno} reply at ${at}${fault.forwarded ? ' (performed)' : ' (not forwarded)'}`;
    case 'delay':
      return `delay ${fault.count} x ${fault.delayMs} ms at ${at}`;
    default:
      return `${fault.kind} at ${at}`;
  }
}
