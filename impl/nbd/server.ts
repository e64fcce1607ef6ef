// An NBD export of a ReplicatedVolume (NetworkBlockDevice doc/proto.md): the fixed
// newstyle handshake, NBD_OPT_EXPORT_NAME / GO / INFO / LIST / ABORT, and the
// transmission phase with simple replies, on node:net. One volume, one export.
//
// Ordering. The volume is synchronous, so each connection is a strict FIFO: the
// bytes of a connection are parsed in arrival order and every complete request
// runs to the end (its I/O durable) and has its reply queued before the next one
// is looked at. Replies therefore leave in request order. What is buffered is
// bounded: at most one partial request (its payload at most `payloadMax` bytes)
// plus what the kernel holds; when the client does not read its replies (more
// than `replyBufferMax` bytes waiting), the server stops reading its requests
// until they drain. Requests of different connections interleave request by
// request, never inside one.
//
// Durability. volume.write returns only once the data and its COW copy are
// fdatasync'ed and its next bit is durable (in the map, or through the COW entry
// during a cycle: docs/format.md), and the reply is sent after it returns. So every acknowledged
// write is already durable: NBD_CMD_FLUSH has nothing left to do (it is answered
// at once, in order) and NBD_CMD_FLAG_FUA is satisfied by every write.
// NBD_FLAG_CAN_MULTI_CONN is advertised for the same reason: a FLUSH on any
// connection covers the writes acknowledged on all of them.
//
// Cycles. A cycle (startCycle, a transfer of every region of C, completeCycle)
// runs in small batches of `batchRegions` transfers (one transferRegions call,
// so one sync of the secondary), each batch a setImmediate callback, so client
// requests are served between batches: a write during a cycle takes the
// copy-on-write path of the volume, which keeps the snapshot view the
// cycle sends (docs/protocol.md INV-SNAPSHOT). Cycles start every `cycleEverySeconds` and
// on requestCycle() (SIGUSR1 in `cowmap serve`); a request during a running
// cycle starts one more right after it. A volume opened in the middle of a cycle
// resumes it at once (`resumeInterruptedCycle`).
//
// Bad clients: wrong magic or a malformed handshake closes that connection; an
// unknown option gets NBD_REP_ERR_UNSUP; an unknown command or flag, or a read,
// trim past the end gets NBD_EINVAL; a write or write-zeroes past the end gets
// NBD_ENOSPC; a request larger than `payloadMax` gets NBD_EINVAL (its payload is
// skipped). A connection dropped mid-request loses only that request, which was
// never acknowledged. No client input throws out of the server.

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { CowmapError } from '../errors.ts';
import type { ReplicatedVolume } from '../replicatedVolume.ts';
import * as nbd from './protocol.ts';

export interface CycleReport {
  cycle: number;
  resumed: boolean;
  regions: number;
  bytes: number;
  seconds: number;
}

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

const optionDataMax = 64 * 1024;
const zeroChunk = 4 * 1024 * 1024;

/** A FIFO of received chunks that hands out exact byte counts without copying everything on each chunk. */
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first `count` bytes, without consuming them (count <= length). */
  peek(count: number): Buffer {
    if (count === 0) return Buffer.alloc(0);
    if (this.chunks[0]!.length < count) {
      const whole = Buffer.concat(this.chunks);
      this.chunks = [whole];
    }
    return this.chunks[0]!.subarray(0, count);
  }

  take(count: number): Buffer {
    const bytes = Buffer.from(this.peek(count));
    this.skip(count);
    return bytes;
  }

  /** Drops up to `count` bytes; returns how many were dropped. */
  skip(count: number): number {
    let dropped = 0;
    while (dropped < count && this.chunks.length > 0) {
      const head = this.chunks[0]!;
      const part = Math.min(head.length, count - dropped);
      if (part === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(part);
      dropped += part;
    }
    this.length -= dropped;
    return dropped;
  }
}

interface RunningCycle {
  cycle: number;
  resumed: boolean;
  regions: number[];
  next: number;
  started: bigint;
}

export class NbdServer {
  readonly volume: ReplicatedVolume;
  readonly exportName: string;
  readonly batchRegions: number;
  readonly payloadMax: number;
  readonly replyBufferMax: number;
  private readonly options: NbdServerOptions;
  private readonly log: (line: string) => void;
  private readonly connections = new Set<Connection>();
  private server: Server | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: RunningCycle | null = null;
  private pending = false;
  private idleWaiters: (() => void)[] = [];
  /** Set once a cycle step failed: the volume handle is poisoned (E_IO) and cycles stop. */
  failure: string | null = null;
  cyclesCompleted = 0;

  constructor(volume: ReplicatedVolume, options: NbdServerOptions = {}) {
    this.volume = volume;
    this.options = options;
    this.exportName = options.exportName ?? '';
    this.batchRegions = Math.max(1, options.batchRegions ?? 8);
    this.payloadMax = options.payloadMax ?? 32 * 1024 * 1024;
    this.replyBufferMax = options.replyBufferMax ?? 64 * 1024 * 1024;
    this.log = options.log ?? ((line) => process.stdout.write(`${line}\n`));
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
    return this.running !== null;
  }

  /** Resolves once no cycle runs and none is pending. */
  whenIdle(): Promise<void> {
    if (this.running === null && !this.pending) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** A volume opened in the middle of a cycle: send every region of C again, then complete. */
  resumeInterruptedCycle(): boolean {
    if (this.volume.phase !== 'replicating' || this.running !== null) return false;
    this.begin(true);
    return true;
  }

  /** Starts a cycle now, or right after the running one. */
  requestCycle(): void {
    if (this.failure !== null) return;
    if (this.running !== null) {
      this.pending = true;
      return;
    }
    this.begin(this.volume.phase === 'replicating');
  }

  private begin(resumed: boolean): void {
    try {
      if (!resumed) {
        this.volume.startCycle();
        this.options.onSwap?.(this.volume.cycle);
      }
      const regions = resumed ? this.volume.unsentRegions() : this.volume.currentRegions();
      this.running = { cycle: this.volume.cycle, resumed, regions, next: 0, started: process.hrtime.bigint() };
      this.log(
        `cycle ${this.volume.cycle}: ${resumed ? 'resuming an interrupted cycle' : 'swap'}, ${regions.length} region(s) to send`,
      );
      setImmediate(() => this.step());
    } catch (error) {
      this.fail(error);
    }
  }

  private step(): void {
    const running = this.running;
    if (running === null) return;
    try {
      const end = Math.min(running.regions.length, running.next + this.batchRegions);
      // One sync of the secondary per batch (ReplicatedVolume.transferRegions).
      this.volume.transferRegions(running.regions.slice(running.next, end));
      running.next = end;
      if (running.next < running.regions.length) {
        setImmediate(() => this.step());
        return;
      }
      this.volume.completeCycle();
      this.running = null;
      this.cyclesCompleted++;
      const seconds = Number(process.hrtime.bigint() - running.started) / 1e9;
      const report: CycleReport = {
        cycle: running.cycle,
        resumed: running.resumed,
        regions: running.regions.length,
        bytes: running.regions.length * this.volume.regionSize,
        seconds,
      };
      this.log(
        `cycle ${report.cycle}: ${report.resumed ? 'resumed and completed' : 'completed'}, sent ` +
          `${report.regions} region(s), ${report.bytes} bytes in ${seconds.toFixed(3)} s`,
      );
      this.options.onCycle?.(report);
    } catch (error) {
      this.fail(error);
      return;
    }
    if (this.pending) {
      this.pending = false;
      this.begin(this.volume.phase === 'replicating');
    } else {
      this.notifyIdle();
    }
  }

  private fail(error: unknown): void {
    this.running = null;
    this.pending = false;
    this.failure =
      error instanceof Error ? `${(error as { code?: string }).code ?? error.name}: ${error.message}` : String(error);
    this.log(`cycle: stopped: ${this.failure}`);
    this.notifyIdle();
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
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

type ConnectionState = 'clientFlags' | 'options' | 'transmission' | 'closed';

class Connection {
  readonly socket: Socket;
  private readonly server: NbdServer;
  private readonly input = new ByteQueue();
  private state: ConnectionState = 'clientFlags';
  private noZeroes = false;
  /** Payload bytes of a refused request still to skip. */
  private skipping = 0;
  private paused = false;

  constructor(server: NbdServer, socket: Socket) {
    this.server = server;
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.input.push(chunk);
      this.pump();
    });
    socket.on('drain', () => {
      if (this.paused) {
        this.paused = false;
        socket.resume();
        this.pump();
      }
    });
    socket.on('error', () => this.drop());
    socket.on('close', () => this.drop());
    const greeting = Buffer.alloc(18);
    greeting.writeBigUInt64BE(nbd.NBDMAGIC, 0);
    greeting.writeBigUInt64BE(nbd.IHAVEOPT, 8);
    greeting.writeUInt16BE(nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES, 16);
    socket.write(greeting);
  }

  private drop(): void {
    this.state = 'closed';
  }

  private close(reason: string | null): void {
    if (reason !== null) this.server.logLine(`nbd: closing a connection: ${reason}`);
    this.state = 'closed';
    this.socket.end();
    this.socket.destroySoon();
  }

  /** Handles every complete message in the input, in order. */
  private pump(): void {
    this.socket.cork();
    try {
      while (this.state !== 'closed' && !this.paused) {
        let more: boolean;
        try {
          more = this.next();
        } catch (error) {
          // A bug of ours, not of the client: drop this connection, keep serving the others.
          this.close(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
          break;
        }
        if (!more) break;
        if (this.socket.writableLength > this.server.replyBufferMax) {
          this.paused = true;
          this.socket.pause();
        }
      }
    } finally {
      this.socket.uncork();
    }
  }

  /** Handles one message if it is complete; false when more bytes are needed. */
  private next(): boolean {
    if (this.skipping > 0) {
      this.skipping -= this.input.skip(this.skipping);
      return this.skipping === 0 && this.input.length > 0;
    }
    switch (this.state) {
      case 'clientFlags':
        return this.clientFlags();
      case 'options':
        return this.option();
      case 'transmission':
        return this.request();
      default:
        return false;
    }
  }

  private clientFlags(): boolean {
    if (this.input.length < 4) return false;
    const flags = this.input.take(4).readUInt32BE(0);
    const known = nbd.FLAG_C_FIXED_NEWSTYLE | nbd.FLAG_C_NO_ZEROES;
    if ((flags & ~known) !== 0) {
      this.close(`unknown client flags 0x${flags.toString(16)}`);
      return false;
    }
    this.noZeroes = (flags & nbd.FLAG_C_NO_ZEROES) !== 0;
    this.state = 'options';
    return true;
  }

  private option(): boolean {
    if (this.input.length < nbd.OPTION_HEADER_SIZE) return false;
    const header = this.input.peek(nbd.OPTION_HEADER_SIZE);
    if (header.readBigUInt64BE(0) !== nbd.IHAVEOPT) {
      this.close('an option without the IHAVEOPT magic');
      return false;
    }
    const option = header.readUInt32BE(8);
    const length = header.readUInt32BE(12);
    if (length > optionDataMax) {
      this.close(`option ${option} with ${length} bytes of data`);
      return false;
    }
    if (this.input.length < nbd.OPTION_HEADER_SIZE + length) return false;
    this.input.skip(nbd.OPTION_HEADER_SIZE);
    const data = this.input.take(length);
    switch (option) {
      case nbd.OPT_EXPORT_NAME:
        return this.exportName(data);
      case nbd.OPT_ABORT:
        this.optionReply(option, nbd.REP_ACK);
        this.close(null);
        return false;
      case nbd.OPT_LIST:
        if (length !== 0) {
          this.optionError(option, nbd.REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
        } else {
          const name = Buffer.from(this.server.exportName, 'utf8');
          const reply = Buffer.alloc(4 + name.length);
          reply.writeUInt32BE(name.length, 0);
          name.copy(reply, 4);
          this.optionReply(option, nbd.REP_SERVER, reply);
          this.optionReply(option, nbd.REP_ACK);
        }
        return true;
      case nbd.OPT_INFO:
      case nbd.OPT_GO:
        return this.infoOrGo(option, data);
      default:
        this.optionError(option, nbd.REP_ERR_UNSUP, `option ${option} is not supported`);
        return true;
    }
  }

  private exportName(data: Buffer): boolean {
    const name = data.toString('utf8');
    if (!this.server.knowsExport(name)) {
      this.close(`NBD_OPT_EXPORT_NAME of an unknown export '${name}'`);
      return false;
    }
    const reply = Buffer.alloc(this.noZeroes ? 10 : 134);
    reply.writeBigUInt64BE(BigInt(this.server.volume.sizeBytes), 0);
    reply.writeUInt16BE(this.server.transmissionFlags, 8);
    this.socket.write(reply);
    this.state = 'transmission';
    return true;
  }

  private infoOrGo(option: number, data: Buffer): boolean {
    const invalid = (): boolean => {
      this.optionError(option, nbd.REP_ERR_INVALID, 'malformed NBD_OPT_INFO/GO data');
      return true;
    };
    if (data.length < 6) return invalid();
    const nameLength = data.readUInt32BE(0);
    if (4 + nameLength + 2 > data.length) return invalid();
    const name = data.subarray(4, 4 + nameLength).toString('utf8');
    const requests = data.readUInt16BE(4 + nameLength);
    if (4 + nameLength + 2 + 2 * requests !== data.length) return invalid();
    if (!this.server.knowsExport(name)) {
      this.optionError(option, nbd.REP_ERR_UNKNOWN, `no export named '${name}'`);
      return true;
    }
    const wanted = new Set<number>();
    for (let index = 0; index < requests; index++) wanted.add(data.readUInt16BE(4 + nameLength + 2 + 2 * index));
    const exportInfo = Buffer.alloc(12);
    exportInfo.writeUInt16BE(nbd.INFO_EXPORT, 0);
    exportInfo.writeBigUInt64BE(BigInt(this.server.volume.sizeBytes), 2);
    exportInfo.writeUInt16BE(this.server.transmissionFlags, 10);
    this.optionReply(option, nbd.REP_INFO, exportInfo);
    if (wanted.has(nbd.INFO_BLOCK_SIZE)) {
      const blockSize = Buffer.alloc(14);
      blockSize.writeUInt16BE(nbd.INFO_BLOCK_SIZE, 0);
      blockSize.writeUInt32BE(1, 2);
      blockSize.writeUInt32BE(4096, 6);
      blockSize.writeUInt32BE(this.server.payloadMax, 10);
      this.optionReply(option, nbd.REP_INFO, blockSize);
    }
    this.optionReply(option, nbd.REP_ACK);
    if (option === nbd.OPT_GO) this.state = 'transmission';
    return true;
  }

  private optionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): void {
    const header = Buffer.alloc(20);
    header.writeBigUInt64BE(nbd.OPTION_REPLY_MAGIC, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(type, 12);
    header.writeUInt32BE(data.length, 16);
    this.socket.write(Buffer.concat([header, data]));
  }

  private optionError(option: number, type: number, message: string): void {
    this.optionReply(option, type, Buffer.from(message, 'utf8'));
  }

  private request(): boolean {
    if (this.input.length < nbd.REQUEST_HEADER_SIZE) return false;
    const header = this.input.peek(nbd.REQUEST_HEADER_SIZE);
    if (header.readUInt32BE(0) !== nbd.REQUEST_MAGIC) {
      this.close(`a request with magic 0x${header.readUInt32BE(0).toString(16)}`);
      return false;
    }
    const flags = header.readUInt16BE(4);
    const type = header.readUInt16BE(6);
    const cookie = Buffer.from(header.subarray(8, 16));
    const offset = header.readBigUInt64BE(16);
    const length = header.readUInt32BE(24);
    if (type === nbd.CMD_WRITE) {
      if (length > this.server.payloadMax) {
        this.input.skip(nbd.REQUEST_HEADER_SIZE);
        this.skipping = length;
        this.reply(cookie, nbd.EINVAL);
        return true;
      }
      if (this.input.length < nbd.REQUEST_HEADER_SIZE + length) return false;
    }
    this.input.skip(nbd.REQUEST_HEADER_SIZE);
    const payload = type === nbd.CMD_WRITE ? this.input.take(length) : null;
    this.serve(type, flags, cookie, offset, length, payload);
    return true;
  }

  private serve(
    type: number,
    flags: number,
    cookie: Buffer,
    offset: bigint,
    length: number,
    payload: Buffer | null,
  ): void {
    const volume = this.server.volume;
    const knownFlags = nbd.CMD_FLAG_FUA | nbd.CMD_FLAG_NO_HOLE;
    if (type === nbd.CMD_DISC) {
      this.close(null);
      return;
    }
    if (nbd.commandNames[type] === undefined || (flags & ~knownFlags) !== 0) {
      this.reply(cookie, nbd.EINVAL);
      return;
    }
    if (type === nbd.CMD_FLUSH) {
      // Every acknowledged write is durable already (see the top of this file).
      this.reply(cookie, 0);
      return;
    }
    const writes = type === nbd.CMD_WRITE || type === nbd.CMD_WRITE_ZEROES;
    if (offset + BigInt(length) > BigInt(volume.sizeBytes)) {
      this.reply(cookie, writes ? nbd.ENOSPC : nbd.EINVAL);
      return;
    }
    const start = Number(offset);
    try {
      if (type === nbd.CMD_READ) {
        if (length > this.server.payloadMax) {
          this.reply(cookie, nbd.EINVAL);
          return;
        }
        const data = volume.read(start, length);
        this.reply(cookie, 0, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      } else if (type === nbd.CMD_WRITE) {
        volume.write(start, payload!);
        this.reply(cookie, 0);
      } else {
        // TRIM and WRITE_ZEROES: writes of zeros, in chunks.
        const zeros = new Uint8Array(Math.min(length, zeroChunk));
        for (let done = 0; done < length; done += zeros.length) {
          const part = Math.min(zeros.length, length - done);
          volume.write(start + done, part === zeros.length ? zeros : zeros.subarray(0, part));
        }
        this.reply(cookie, 0);
      }
    } catch (error) {
      const detail = error instanceof CowmapError ? `${error.code}: ${error.message}` : String(error);
      this.server.logLine(`nbd: ${nbd.commandNames[type]} at ${offset}, length ${length} failed: ${detail}`);
      this.reply(cookie, error instanceof CowmapError && error.code !== 'E_IO' ? nbd.EINVAL : nbd.EIO);
    }
  }

  private reply(cookie: Buffer, error: number, data: Buffer | null = null): void {
    const header = Buffer.alloc(nbd.SIMPLE_REPLY_HEADER_SIZE);
    header.writeUInt32BE(nbd.SIMPLE_REPLY_MAGIC, 0);
    header.writeUInt32BE(error, 4);
    cookie.copy(header, 8);
    this.socket.write(header);
    if (data !== null && data.length > 0) this.socket.write(data);
  }
}
