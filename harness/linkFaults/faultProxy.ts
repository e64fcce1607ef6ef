// An NBD-aware fault proxy: it listens (TCP on 127.0.0.1 or a Unix socket) in front
// of a real NBD server (nbdkit file, qemu-nbd, `cowmap receive`; farSide.ts runs
// it) and applies a seeded fault schedule (schedule.ts) to the transmission phase,
// request by request (proxyConnection.ts frames the messages).
//
// The crash model of the proxy: what each fault means for what the far side holds.
// "Performed" is what the server did with a request; "durable" is what survives a
// power loss of the far side: everything up to its last successful FLUSH.
//
//   refuse          Every connection dropped and the listener closed for a while:
//                   the far side keeps what it holds; requests not yet forwarded
//                   never reach it. Connects are refused (ECONNREFUSED or ENOENT).
//   dropBefore      The k-th request is not forwarded, the connection drops: the far
//                   side never sees it. Earlier requests of the connection were
//                   forwarded and may or may not be performed (their replies may be
//                   lost with the connection).
//   dropAfter       The k-th request is forwarded, then the connection drops: it may
//                   or may not be performed; its reply never reaches the client.
//   dropMidPayload  A WRITE's header and the first half of its payload forwarded,
//                   then the connection drops: the server never has the whole
//                   request, so it does not perform it.
//   errorReply      forwarded: the far side performed the request (the WRITE landed,
//                   the FLUSH made everything durable) and the client is told EIO or
//                   ENOSPC. Not forwarded: the proxy answers the error itself and the
//                   far side never sees the request. Either way the client may assume
//                   nothing of the request: an NBD error leaves its effect unknown.
//   delay           Replies held for a while (and every reply behind them on the
//                   connection); the far side is unchanged. A client whose request
//                   timeout is shorter drops the connection itself.
//   restart         The server killed (SIGKILL) and started on the same files: a
//                   write it replied to is in its file (the page cache survives a
//                   process kill), so nothing performed is lost.
//   powerLoss       The server killed and started on its files as of the last FLUSH
//                   whose success passed the proxy (copied as the reply went by):
//                   everything performed after that FLUSH is lost. That copy may
//                   also hold writes performed after the FLUSH, or a write torn in
//                   flight: a power loss may keep any of them.
//   tornPowerLoss   The same, then a seeded half of the WRITEs forwarded since that
//                   FLUSH written over it (a plain image only): the far side keeps
//                   some of its unflushed writes and loses others, in any mix (a
//                   control block kept, the data before it lost, say).
//   mark, restoreOlder  The server's files copied at the mark (as they are: requests
//                   in flight may be torn) and put back at the restoreOlder, with a
//                   kill and a start: the far side loses whatever it confirmed after
//                   the mark, FLUSHes included. Nothing may be silently trusted after
//                   it: the primary must notice (its control block is older).
//
// Restarts drop every connection; new connections wait until the server is up.

import { closeSync, existsSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { Prng } from '../prng.ts';
import * as nbd from '../../impl/nbd/protocol.ts';
import { controlBlockSize, decodeControlBlock } from '../../impl/remote/controlBlock.ts';
import type { FarSide } from './farSide.ts';
import { type ConnectionHost, type ProxiedRequest, ProxyConnection, type RequestDecision } from './proxyConnection.ts';
import { type Fault, type FaultKind, type FaultSchedule, faultKinds, type TriggerCommand } from './schedule.ts';

/** Where the proxy listens. */
export type ProxyListen =
  | { readonly kind: 'tcp'; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/** What went through the proxy and what it did, since its start. */
export interface ProxyCounts {
  connections: number;
  /** Connections passed through unparsed (structured replies): no fault reaches them. */
  opaqueConnections: number;
  requests: Record<TriggerCommand, number>;
  /** Faults that fired, by kind. */
  faults: Record<FaultKind, number>;
  /** WRITEs of the image (not the control block). */
  dataWrites: number;
  /** WRITEs of the image at an offset already written in the same cycle (by the control blocks seen). */
  resentWrites: number;
  /** FLUSHes the far side answered with success: the durable snapshots taken. */
  durableFlushes: number;
  farSideStarts: number;
  /**
   * Times the far side died by itself and was started again on its files (nbdkit
   * 1.32 aborts, now and then, when a connection drops while it sends replies: an
   * assertion in raw_send_socket): not a fault of the schedule, but one like restart.
   */
  farSideCrashes: number;
}

/** The snapshot names the proxy keeps with the far side. */
export const snapshotNames = { durable: 'durable', mark: 'mark' } as const;

const commandOfType: Partial<Record<number, TriggerCommand>> = {
  [nbd.CMD_READ]: 'READ',
  [nbd.CMD_WRITE]: 'WRITE',
  [nbd.CMD_FLUSH]: 'FLUSH',
};

function emptyCounts(): ProxyCounts {
  return {
    connections: 0,
    opaqueConnections: 0,
    requests: { ANY: 0, READ: 0, WRITE: 0, FLUSH: 0 },
    faults: Object.fromEntries(faultKinds.map((kind) => [kind, 0])) as Record<FaultKind, number>,
    dataWrites: 0,
    resentWrites: 0,
    durableFlushes: 0,
    farSideStarts: 0,
    farSideCrashes: 0,
  };
}

export class FaultProxy implements ConnectionHost {
  readonly counts = emptyCounts();
  private readonly connections = new Set<ProxyConnection>();
  private pending: Fault[];
  private server: Server | null = null;
  /** Settles when the far side is up: new connections wait for it. */
  private farReady: Promise<void> = Promise.resolve();
  /** A far-side failure that the next checker must hear (a restart that could not start it). */
  farError: Error | null = null;
  private cycleSeen = -1;
  /** The WRITEs forwarded since the last FLUSH that succeeded: what a torn power loss may keep. */
  private writesSinceFlush: { offset: number; payload: Buffer }[] = [];
  private readonly writtenThisCycle = new Set<number>();
  private stopped = false;

  constructor(
    private readonly far: FarSide,
    private readonly listen: ProxyListen,
    schedule: FaultSchedule,
    /** One line per connection event, request and fault (proxyChild.ts: COWMAP_LINKFAULTS_TRACE=FILE). */
    private readonly trace: (line: string) => void = () => {},
  ) {
    this.pending = [...schedule.faults];
    far.onUnexpectedExit = (why) => {
      this.counts.farSideCrashes++;
      this.trace(`far side crashed: ${why}`);
      if (!this.stopped) this.restartFar(null);
    };
  }

  get upstreamPath(): string {
    return this.far.spec.socketPath;
  }

  /** Starts the far side, takes its first durable snapshot, and listens. */
  async start(): Promise<void> {
    await this.far.start();
    this.counts.farSideStarts = this.far.starts;
    this.far.snapshot(snapshotNames.durable);
    await this.openListener();
  }

  /** No more faults from now on (the history's calm end). */
  calm(): void {
    this.pending = [];
  }

  /** `schedule` from now on: its triggers count requests from here (the counts of requests restart). */
  arm(schedule: FaultSchedule): void {
    this.pending = [...schedule.faults];
    for (const command of Object.keys(this.counts.requests) as TriggerCommand[]) this.counts.requests[command] = 0;
  }

  /** The far side's failure to start again after a fault, if any (then every connection is refused). */
  get farProblem(): string | null {
    return this.farError === null ? null : `${this.farError.message} ${this.far.stderrHead}`.trim();
  }

  /** How the far side last died by itself, if it did (it was started again). */
  get farCrash(): string | null {
    return this.far.unexpectedExit;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.calm();
    for (const connection of [...this.connections]) connection.destroy('the proxy stops');
    await this.closeListener();
    await this.farReady.catch(() => {});
    await this.far.kill();
  }

  private openListener(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    if (this.listen.kind === 'unix' && existsSync(this.listen.path)) unlinkSync(this.listen.path);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      const ready = () => {
        server.off('error', reject);
        resolve();
      };
      if (this.listen.kind === 'tcp') server.listen(this.listen.port, '127.0.0.1', ready);
      else server.listen(this.listen.path, ready);
    });
  }

  private closeListener(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  private accept(socket: import('node:net').Socket): void {
    const connection = new ProxyConnection(this, socket);
    this.connections.add(connection);
    this.counts.connections++;
    this.trace(`accept ${this.counts.connections}`);
    this.farReady.then(
      () => connection.attach(),
      () => connection.destroy('the far side is down'),
    );
  }

  closed(connection: ProxyConnection, why: string): void {
    this.trace(`connection closed: ${why}`);
    if (this.connections.delete(connection) && connection.opaque) this.counts.opaqueConnections++;
  }

  /** The faults whose trigger is this request, taken off the schedule. */
  private firing(command: TriggerCommand | undefined): Fault[] {
    const counts = this.counts.requests;
    const matches = (fault: Fault) =>
      (fault.at.command === 'ANY' && fault.at.index === counts.ANY) ||
      (fault.at.command === command && fault.at.index === counts[command]);
    const fired = this.pending.filter(matches);
    this.pending = this.pending.filter((fault) => !matches(fault));
    counts.ANY++;
    if (command !== undefined) counts[command]++;
    for (const fault of fired) this.counts.faults[fault.kind]++;
    this.trace(`request ${command ?? 'other'} #${counts.ANY - 1}${fired.map((fault) => ` ${fault.kind}`).join('')}`);
    return fired;
  }

  decide(connection: ProxyConnection, request: ProxiedRequest): RequestDecision {
    const command = commandOfType[request.type];
    const fired = this.firing(command);
    if (request.type === nbd.CMD_WRITE) this.noteWrite(connection, request);
    let decision: RequestDecision = { action: 'forward' };
    for (const fault of fired) decision = this.apply(fault, decision, request);
    const reaches = decision.action === 'forward' || decision.action === 'dropAfter';
    if (request.type === nbd.CMD_WRITE && reaches && this.far.spec.plainImagePath !== undefined)
      this.writesSinceFlush.push({ offset: request.offset, payload: Buffer.from(request.payload) });
    return decision;
  }

  /** One fault on top of what the request's earlier faults decided; the far side's faults start here. */
  private apply(fault: Fault, decision: RequestDecision, request: ProxiedRequest): RequestDecision {
    const ending = decision.action !== 'forward' && decision.action !== 'answer';
    switch (fault.kind) {
      case 'delay':
        return { ...decision, delayMs: (decision.delayMs ?? 0) + fault.delayMs * fault.count };
      case 'errorReply':
        if (ending) return decision;
        return fault.forwarded
          ? { ...decision, replyErrno: fault.errno }
          : { ...decision, action: 'answer', answerErrno: fault.errno };
      case 'dropBefore':
      case 'dropAfter':
        return { action: fault.kind };
      case 'dropMidPayload':
        return { action: request.type === nbd.CMD_WRITE ? 'dropMidPayload' : 'dropBefore' };
      case 'mark':
        this.far.snapshot(snapshotNames.mark);
        return decision;
      case 'refuse':
        void this.refuseFor(fault.durationMs);
        return { action: 'dropBefore' };
      case 'restart':
        this.restartFar(null);
        return { action: 'dropBefore' };
      case 'powerLoss':
        this.restartFar(snapshotNames.durable);
        return { action: 'dropBefore' };
      case 'tornPowerLoss':
        this.restartFar(snapshotNames.durable, this.keptWrites(fault.keepSeed));
        return { action: 'dropBefore' };
      case 'restoreOlder':
        this.restartFar(this.far.hasSnapshot(snapshotNames.mark) ? snapshotNames.mark : null);
        return { action: 'dropBefore' };
    }
  }

  /** Counts data writes and resends: a control block write that names a new cycle starts a new set of offsets. */
  private noteWrite(connection: ProxyConnection, request: ProxiedRequest): void {
    const controlOffset = connection.exportSize - controlBlockSize;
    if (connection.exportSize > 0 && request.offset === controlOffset && request.length === controlBlockSize) {
      const decoded = decodeControlBlock(new Uint8Array(request.payload));
      if (decoded.kind === 'block' && decoded.block.cycle !== this.cycleSeen) {
        this.cycleSeen = decoded.block.cycle;
        this.writtenThisCycle.clear();
      }
      return;
    }
    this.counts.dataWrites++;
    if (this.writtenThisCycle.has(request.offset)) this.counts.resentWrites++;
    this.writtenThisCycle.add(request.offset);
  }

  replied(request: { readonly type: number }, error: number): void {
    if (request.type !== nbd.CMD_FLUSH || error !== 0) return;
    this.counts.durableFlushes++;
    this.far.snapshot(snapshotNames.durable);
    this.writesSinceFlush = [];
  }

  /** A seeded half of the writes since the last FLUSH (each by a coin), in their order. */
  private keptWrites(keepSeed: number): { offset: number; payload: Buffer }[] {
    const prng = new Prng(keepSeed);
    return this.writesSinceFlush.filter(() => prng.nextBool());
  }

  /** The kept writes over the restored plain image, as a power loss may have left them. */
  private writeKept(kept: readonly { offset: number; payload: Buffer }[]): void {
    const path = this.far.spec.plainImagePath;
    if (path === undefined || kept.length === 0) return;
    const fd = openSync(path, 'r+');
    try {
      for (const { offset, payload } of kept) writeSync(fd, payload, 0, payload.length, offset);
    } finally {
      closeSync(fd);
    }
  }

  private dropAll(why: string): void {
    for (const connection of [...this.connections]) connection.destroy(why);
  }

  private async refuseFor(durationMs: number): Promise<void> {
    // The connection that fired it drops once decide returns; the others now.
    this.dropAll('refuse');
    await this.closeListener();
    await new Promise((resolve) => setTimeout(resolve, durationMs));
    if (!this.stopped && this.server === null) await this.openListener();
  }

  /** Kill, put `snapshot` back (null: keep the files) and `kept` over it, start; new connections wait meanwhile. */
  private restartFar(snapshot: string | null, kept: readonly { offset: number; payload: Buffer }[] = []): void {
    this.dropAll('the far side restarts');
    // A plain restart loses nothing: what was written since the last FLUSH is still not durable.
    if (snapshot !== null) this.writesSinceFlush = [];
    this.farReady = this.farReady
      .catch(() => {})
      .then(async () => {
        await this.far.kill();
        if (snapshot !== null) this.far.restore(snapshot);
        this.writeKept(kept);
        if (this.stopped) return;
        await this.far.start();
        this.trace(`far side started again${snapshot === null ? '' : ` on ${snapshot}`}`);
        this.counts.farSideStarts = this.far.starts;
        // A power loss takes the far side back to its durable state, which it now is.
        if (snapshot !== null) this.far.snapshot(snapshotNames.durable);
      })
      .catch((error: Error) => {
        this.farError = error;
        throw error;
      });
  }
}
