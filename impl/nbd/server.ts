// An NBD export of a ReplicatedVolume (NetworkBlockDevice doc/proto.md), on node:net.
// One volume, one export. The parts, in this folder: the handshake (handshake.ts),
// a connection's framing (connection.ts), the requests run against the volume
// (engine.ts), the replies (replies.ts), BLOCK_STATUS (blockStatus.ts), the cycles
// (cycles.ts). docs/nbd.md describes the behaviour.
//
// Durability: a WRITE is answered once its bytes are in the OS (volume.writeMany:
// its COW copy and next bit durable first, docs/format.md); FLUSH and FUA make the
// acknowledged writes durable (volume.flush). NBD_FLAG_CAN_MULTI_CONN is advertised
// because every connection shares one volume: a FLUSH on any connection syncs the
// writes acknowledged on all of them.
//
// Bad clients: wrong magic or a malformed handshake closes that connection; an
// unknown option gets NBD_REP_ERR_UNSUP; an unknown command or flag, or a read or
// trim past the end gets NBD_EINVAL; a write or write-zeroes past the end gets
// NBD_ENOSPC; a request larger than `payloadMax` gets NBD_EINVAL (its payload is
// skipped). A connection dropped mid-request loses only that request, which was
// never acknowledged. No client input throws out of the server.

import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import type { ReplicatedVolume } from '../replicatedVolume.ts';
import { Connection, type ConnectionLimits } from './connection.ts';
import { type CycleReport, CycleRunner } from './cycles.ts';
import { Engine } from './engine.ts';
import * as nbd from './protocol.ts';

export type { CycleReport } from './cycles.ts';

export interface NbdServerOptions {
  /** The export's name; the default export "" is always accepted too. */
  exportName?: string;
  /** Run a cycle every this many seconds (0 or absent: only on request). */
  cycleEverySeconds?: number;
  /** Transfers per batch between client requests. */
  batchRegions?: number;
  /** The largest READ or WRITE payload accepted. */
  payloadMax?: number;
  replyBufferMax?: number;
  /** Where progress lines go. */
  log?: (line: string) => void;
  /** Called right after each swap (not on a resume), for tests: the primary is P@swap now. */
  onSwap?: (cycle: number) => void;
  /** Called right after each completed cycle. */
  onCycle?: (report: CycleReport) => void;
}

export class NbdServer {
  readonly volume: ReplicatedVolume;
  readonly exportName: string;
  readonly limits: ConnectionLimits;
  readonly engine: Engine;
  readonly cycles: CycleRunner;
  private readonly options: NbdServerOptions;
  private readonly log: (line: string) => void;
  private readonly connections = new Set<Connection>();
  private server: Server | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(volume: ReplicatedVolume, options: NbdServerOptions = {}) {
    this.volume = volume;
    this.options = options;
    this.exportName = options.exportName ?? '';
    this.limits = {
      payloadMax: options.payloadMax ?? 32 * 1024 * 1024,
      replyBufferMax: options.replyBufferMax ?? 64 * 1024 * 1024,
    };
    this.log = options.log ?? ((line) => process.stdout.write(`${line}\n`));
    this.engine = new Engine(volume, { payloadMax: this.limits.payloadMax, log: this.log });
    this.cycles = new CycleRunner(volume, {
      batchRegions: Math.max(1, options.batchRegions ?? 8),
      log: this.log,
      onSwap: options.onSwap,
      onCycle: options.onCycle,
    });
  }

  /** Listens on 127.0.0.1:port (0: any free port) or on a Unix socket; resolves to the port or the path. */
  listen(where: { port?: number; socketPath?: string }): Promise<number | string> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    const every = this.options.cycleEverySeconds ?? 0;
    if (every > 0) this.timer = setInterval(() => this.requestCycle(), every * 1000);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        server.on('error', (error) => this.log(`nbd: server error: ${error.message}`));
        const address = server.address();
        resolve(typeof address === 'string' ? address : (address as AddressInfo).port);
      };
      if (where.socketPath !== undefined) server.listen(where.socketPath, done);
      else server.listen(where.port ?? 0, '127.0.0.1', done);
    });
  }

  /** Stops the timer, refuses new connections and drops the open ones. The volume stays open. */
  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const connection of this.connections) connection.socket.destroy();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get cycleRunning(): boolean {
    return this.cycles.isRunning;
  }

  get failure(): string | null {
    return this.cycles.failure;
  }

  get cyclesCompleted(): number {
    return this.cycles.completed;
  }

  /** Resolves once no cycle runs and none is pending. */
  whenIdle(): Promise<void> {
    return this.cycles.whenIdle();
  }

  /** A volume opened in the middle of a cycle: send every region of C again, then complete. */
  resumeInterruptedCycle(): boolean {
    return this.cycles.resumeInterrupted();
  }

  /** Starts a cycle now, or right after the running one. */
  requestCycle(): void {
    this.cycles.request();
  }

  private accept(socket: Socket): void {
    const connection = new Connection(this, socket);
    this.connections.add(connection);
    socket.on('close', () => this.connections.delete(connection));
  }

  /** A client asked for `name`: the default export "" or ours. */
  knowsExport(name: string): boolean {
    return name === '' || name === this.exportName;
  }

  get sizeBytes(): number {
    return this.volume.sizeBytes;
  }

  get payloadMax(): number {
    return this.limits.payloadMax;
  }

  get transmissionFlags(): number {
    return (
      nbd.FLAG_HAS_FLAGS |
      nbd.FLAG_SEND_FLUSH |
      nbd.FLAG_SEND_FUA |
      nbd.FLAG_SEND_TRIM |
      nbd.FLAG_SEND_WRITE_ZEROES |
      nbd.FLAG_CAN_MULTI_CONN
    );
  }

  logLine(line: string): void {
    this.log(line);
  }
}
