// An NBD export of a ReplicatedVolume (NetworkBlockDevice doc/proto.md), on node:net.
// One volume, one export. The parts, in this folder: the handshake (handshake.ts),
// a connection's framing and reservations (connection.ts), the buffer budget
// (bufferBudget.ts), the pump that runs client batches and cycle slices
// (batchScheduler.ts), a batch against the volume (engine.ts), the replies
// (replies.ts), BLOCK_STATUS (blockStatus.ts), the cycles (cycles.ts).
// docs/nbd.md describes the behaviour.
//
// Durability: a WRITE is answered once its bytes are in the OS (volume.writeMany:
// its COW copy and next bit durable first, docs/format.md); FLUSH and FUA make the
// acknowledged writes durable (volume.flush). NBD_FLAG_CAN_MULTI_CONN is advertised
// because every connection shares one volume: a FLUSH on any connection syncs the
// writes acknowledged on all of them.
//
// Bad clients: wrong magic or a malformed handshake closes that connection, as do
// a handshake over `handshakeTimeoutSeconds` and a payload stalled for
// `requestTimeoutSeconds`; connections over `connectionsMax` are closed at once;
// an unknown option gets NBD_REP_ERR_UNSUP; an unknown command or flag, or a read
// or trim past the end gets NBD_EINVAL; a write or write-zeroes past the end gets
// NBD_ENOSPC; a request larger than `payloadMax` gets NBD_EINVAL (its payload is
// skipped). A connection dropped mid-request loses only its unanswered requests.
// No client input throws out of the server.

import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import type { ReplicatedVolume } from '../replicatedVolume.ts';
import { BatchScheduler } from './batchScheduler.ts';
import { BufferBudget, requestShareBytes } from './bufferBudget.ts';
import { Connection, type ConnectionLimits } from './connection.ts';
import { type CycleReport, CycleRunner } from './cycles.ts';
import { Engine } from './engine.ts';
import * as nbd from './protocol.ts';
import { serveDefaults } from './serveDefaults.ts';
import { ServeReporter } from './serveReporter.ts';

export type { CycleReport } from './cycles.ts';

export interface NbdServerOptions {
  /** The export's name; the default export "" is always accepted too. */
  exportName?: string;
  /** Run a cycle every this many seconds (0 or absent: only on request). */
  cycleEverySeconds?: number;
  /** Regions per transfer slice of a cycle (one sync of the secondary each); default: 8 MiB of regions. */
  batchRegions?: number;
  /** The largest READ or WRITE payload accepted. */
  payloadMax?: number;
  /** The one cap on payload and reply bytes held across all connections. */
  bufferBytesMax?: number;
  connectionsMax?: number;
  handshakeTimeoutSeconds?: number;
  requestTimeoutSeconds?: number;
  /** Most requests in one group-commit batch. */
  batchRequestsMax?: number;
  /** TRIM / WRITE_ZEROES run in chunks of this many bytes, one per batch. */
  chunkBytes?: number;
  /** A summary line this often when no cycle sent anything (0: never). */
  summaryEverySeconds?: number;
  /** Write DIR/serve.status (the volume's directory) at each cycle event and every second (default true). */
  statusFile?: boolean;
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
  readonly budget: BufferBudget;
  readonly engine: Engine;
  readonly cycles: CycleRunner;
  readonly scheduler: BatchScheduler;
  readonly connectionsMax: number;
  private readonly options: NbdServerOptions;
  private readonly log: (line: string) => void;
  private readonly reporter: ServeReporter;
  private readonly connections = new Set<Connection>();
  private server: Server | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(volume: ReplicatedVolume, options: NbdServerOptions = {}) {
    this.volume = volume;
    this.options = options;
    this.exportName = options.exportName ?? '';
    const payloadMax = options.payloadMax ?? serveDefaults.payloadMax;
    const bufferBytesMax = options.bufferBytesMax ?? serveDefaults.bufferBytesMax;
    positive('payloadMax', payloadMax);
    positive('chunkBytes', options.chunkBytes ?? serveDefaults.chunkBytes);
    // Every reservation fits the cap alone, so waiting for the budget never deadlocks.
    if (bufferBytesMax < payloadMax + requestShareBytes)
      throw new Error(`bufferBytesMax ${bufferBytesMax} is below payloadMax ${payloadMax} + ${requestShareBytes}`);
    this.limits = {
      payloadMax,
      handshakeTimeoutMs: 1000 * (options.handshakeTimeoutSeconds ?? serveDefaults.handshakeTimeoutSeconds),
      requestTimeoutMs: 1000 * (options.requestTimeoutSeconds ?? serveDefaults.requestTimeoutSeconds),
      queuedMax: serveDefaults.queuedPerConnectionMax,
    };
    this.connectionsMax = options.connectionsMax ?? serveDefaults.connectionsMax;
    this.budget = new BufferBudget(bufferBytesMax, this.connectionsMax);
    this.log = options.log ?? ((line) => process.stdout.write(`${line}\n`));
    this.engine = new Engine(volume, {
      payloadMax,
      chunkBytes: options.chunkBytes ?? serveDefaults.chunkBytes,
      log: this.log,
    });
    this.cycles = new CycleRunner(volume, {
      batchRegions: Math.max(1, options.batchRegions ?? Math.floor(serveDefaults.sliceBytes / volume.regionSize)),
      log: this.log,
      wake: () => this.scheduler.wake(),
      onSwap: options.onSwap,
      onCycle: options.onCycle,
      onEvent: () => this.reporter.writeStatus(),
    });
    this.scheduler = new BatchScheduler(
      this.engine,
      this.cycles,
      options.batchRequestsMax ?? serveDefaults.batchRequestsMax,
    );
    this.reporter = new ServeReporter(this, {
      log: this.log,
      summaryEverySeconds: options.summaryEverySeconds ?? serveDefaults.summaryEverySeconds,
      statusFile: options.statusFile ?? true,
    });
  }

  /** Listens on 127.0.0.1:port (0: any free port) or on a Unix socket; resolves to the port or the path. */
  listen(where: { port?: number; socketPath?: string }): Promise<number | string> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (error) => {
        // Nothing may keep the process alive after a failed listen (no cycle timer yet).
        this.server = null;
        reject(error);
      });
      const done = (): void => {
        server.removeAllListeners('error');
        const every = this.options.cycleEverySeconds ?? 0;
        if (every > 0) this.timer = setInterval(() => this.requestCycle(), every * 1000);
        server.on('error', (error) => this.log(`nbd: server error: ${error.message}`));
        const address = server.address();
        const listening = typeof address === 'string' ? address : `127.0.0.1:${(address as AddressInfo).port}`;
        this.reporter.start(listening);
        resolve(typeof address === 'string' ? address : (address as AddressInfo).port);
      };
      if (where.socketPath !== undefined) server.listen(where.socketPath, done);
      else server.listen(where.port ?? 0, '127.0.0.1', done);
    });
  }

  /**
   * Stops the timers, refuses new connections and drops the open ones. The volume
   * stays open; a running cycle goes on, unless `leaveCycle` (the volume is closed
   * next: the cycle is left for the next open to resume, not failed by the close).
   */
  async close(options: { leaveCycle?: boolean } = {}): Promise<void> {
    if (options.leaveCycle === true) this.cycles.leave();
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.reporter.stop();
    for (const connection of this.connections) connection.socket.destroy();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get connectionCount(): number {
    return this.connections.size;
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
    if (this.connections.size >= this.connectionsMax) {
      this.log(`nbd: refusing a connection: ${this.connections.size} open, the limit is ${this.connectionsMax}`);
      socket.destroy();
      return;
    }
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

  get regionSize(): number {
    return this.volume.regionSize;
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

function positive(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got ${value}`);
}
