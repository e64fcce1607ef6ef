// The NBD front end of `cowmap receive` (docs/receive.md): one export, the receiver
// store of DIR2, served with the modules of `cowmap serve` (impl/nbd/): the handshake,
// a connection's framing and reservations, the one buffer budget, the batch scheduler
// and the engine, over a ReceiveServerTarget instead of a volume. No cycles run here;
// the primary's control block writes start and complete them (receiveServerTarget.ts).
//
// Flags: HAS_FLAGS | SEND_FLUSH | SEND_FUA | SEND_WRITE_ZEROES. No TRIM (the primary
// never trims its secondary; a TRIM is NBD_EINVAL), no BLOCK_STATUS and no metadata
// context, and no CAN_MULTI_CONN: the signals rely on the order of one connection's
// requests (a control block write before the writes it governs), which two connections
// would not give, and a FLUSH covers what was answered on every connection only because
// all share one store and one pump; the primary uses one connection.
//
// Order: a connection's requests run in the order it sent them (the scheduler takes
// them from the head of its queue; a WRITE_ZEROES stays at the head until its last
// chunk ran), and the engine applies a batch's writes in that order. A FLUSH is
// answered once every write answered before it arrived is durable (the store's flush).

import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { BatchScheduler } from '../nbd/batchScheduler.ts';
import { BufferBudget, requestShareBytes } from '../nbd/bufferBudget.ts';
import { Connection, type ConnectionLimits, type ConnectionServer } from '../nbd/connection.ts';
import { Engine } from '../nbd/engine.ts';
import * as nbd from '../nbd/protocol.ts';
import { serveDefaults } from '../nbd/serveDefaults.ts';
import { type ReceiveEvents, ReceiveServerTarget, type ServedStore } from './receiveServerTarget.ts';
import type { ReceiverStatus } from './receiverStatus.ts';

export interface ReceiveServerOptions {
  /** The export's name; the default export "" is always accepted too. */
  exportName?: string;
  /** The largest READ or WRITE payload accepted. */
  payloadMax?: number;
  /** The one cap on payload and reply bytes held across all connections. */
  bufferBytesMax?: number;
  connectionsMax?: number;
  handshakeTimeoutSeconds?: number;
  requestTimeoutSeconds?: number;
  batchRequestsMax?: number;
  /** WRITE_ZEROES runs in chunks of this many bytes, one per batch. */
  chunkBytes?: number;
  /** Where progress lines go. */
  log?: (line: string) => void;
  /** Called after each cycle event and storage failure (the status file). */
  onEvent?: () => void;
}

/** What a cycle's completion reports. */
export interface ReceivedCycle {
  readonly cycle: number;
  readonly bytes: number;
  readonly seconds: number | null;
  readonly swapTimeMs: number;
}

export class ReceiveServer implements ConnectionServer {
  readonly target: ReceiveServerTarget;
  readonly exportName: string;
  readonly limits: ConnectionLimits;
  readonly budget: BufferBudget;
  readonly engine: Engine;
  readonly scheduler: BatchScheduler;
  readonly connectionsMax: number;
  /** BLOCK_STATUS is not served: the reservation of one (refused) never looks at regions. */
  readonly regionSize = 4096;
  readonly metaContextsServed = false;
  readonly transmissionFlags =
    nbd.FLAG_HAS_FLAGS | nbd.FLAG_SEND_FLUSH | nbd.FLAG_SEND_FUA | nbd.FLAG_SEND_WRITE_ZEROES;
  cyclesCompleted = 0;
  lastCycle: ReceivedCycle | null = null;
  private readonly log: (line: string) => void;
  private readonly onEvent: () => void;
  private readonly connections = new Set<Connection>();
  private server: Server | null = null;

  constructor(store: ServedStore, options: ReceiveServerOptions = {}) {
    this.exportName = options.exportName ?? '';
    this.log = options.log ?? ((line) => process.stdout.write(`${line}\n`));
    this.onEvent = options.onEvent ?? (() => {});
    const payloadMax = options.payloadMax ?? serveDefaults.payloadMax;
    const bufferBytesMax = options.bufferBytesMax ?? serveDefaults.bufferBytesMax;
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
    this.target = new ReceiveServerTarget(store, this.events());
    this.engine = new Engine(this.target, {
      payloadMax,
      chunkBytes: options.chunkBytes ?? serveDefaults.chunkBytes,
      log: (line) => this.log(`${new Date().toISOString()} ${line}`),
    });
    const noCycles = { isRunning: false, step: () => {} };
    this.scheduler = new BatchScheduler(
      this.engine,
      noCycles,
      options.batchRequestsMax ?? serveDefaults.batchRequestsMax,
    );
  }

  /** The log lines of the cycles the primary starts and completes. */
  private events(): ReceiveEvents {
    const stamp = (): string => new Date().toISOString();
    return {
      cycleStarted: (cycle, status) => {
        this.log(`${stamp()} receive: cycle ${cycle} started (the last completed: ${status.completedCycle ?? 'none'})`);
        this.onEvent();
      },
      cycleCompleted: (cycle, bytes, seconds, status) => {
        this.cyclesCompleted++;
        this.lastCycle = { cycle, bytes, seconds, swapTimeMs: status.completedSwapTimeMs };
        const took = seconds === null ? '' : ` in ${seconds.toFixed(3)} s`;
        this.log(
          `${stamp()} receive: cycle ${cycle} completed: ${bytes} bytes${took}; ` +
            `the consistent image is the primary at ${swapTimeText(status.completedSwapTimeMs)}`,
        );
        this.onEvent();
      },
      stopped: (error) => {
        const detail = error instanceof Error ? error.message : String(error);
        this.log(`${stamp()} receive: storage error, no more writes until restarted: ${detail}`);
        this.onEvent();
      },
    };
  }

  get sizeBytes(): number {
    return this.target.sizeBytes;
  }

  get payloadMax(): number {
    return this.limits.payloadMax;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get status(): ReceiverStatus {
    return this.target.status;
  }

  knowsExport(name: string): boolean {
    return name === '' || name === this.exportName;
  }

  logLine(line: string): void {
    this.log(line);
  }

  /** Listens on host:port (port 0: any free port) or a Unix socket; resolves to the port or the path. */
  listen(where: { host?: string; port?: number; socketPath?: string }): Promise<number | string> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (error) => {
        this.server = null;
        reject(error);
      });
      const done = (): void => {
        server.removeAllListeners('error');
        server.on('error', (error) => this.log(`nbd: server error: ${error.message}`));
        const address = server.address();
        resolve(typeof address === 'string' ? address : (address as AddressInfo).port);
      };
      if (where.socketPath !== undefined) server.listen(where.socketPath, done);
      else server.listen(where.port ?? 0, where.host ?? '127.0.0.1', done);
    });
  }

  /**
   * Refuses new connections and drops the open ones (their requests not yet run are
   * never answered: the primary resends them), then makes every applied write durable
   * (unless a storage error stopped the receiver). The store stays open.
   */
  async close(): Promise<void> {
    for (const connection of this.connections) connection.socket.destroy();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.target.failure === null) this.target.flush();
  }

  private accept(socket: Socket): void {
    if (this.connections.size >= this.connectionsMax) {
      this.log(`nbd: refusing a connection: ${this.connections.size} open, the limit is ${this.connectionsMax}`);
      socket.destroy();
      return;
    }
    const connection = new Connection(this, socket);
    this.target.accepted(connection);
    this.connections.add(connection);
    socket.on('close', () => this.connections.delete(connection));
  }
}

/** A swap time for the log: ISO 8601, or "an unknown time" (0: the primary did not know it). */
export function swapTimeText(swapTimeMs: number): string {
  return swapTimeMs === 0 ? 'an unknown time' : new Date(swapTimeMs).toISOString();
}
