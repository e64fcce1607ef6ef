// An asynchronous NBD client (doc/proto.md) for one export: the fixed newstyle
// handshake (clientHandshake.ts), then READ, WRITE (with FUA), WRITE_ZEROES, FLUSH and
// DISC with simple replies, many requests in flight on one connection
// (transmission.ts). Reads and writes longer than the server's maximum payload are
// split; a caller sees one promise per call. Errors: NbdReplyError for a request the
// server failed, NbdLinkError when the connection fails (every outstanding request
// with it), CowmapError E_BAD_REQUEST for a request this export cannot take.

import { connect as netConnect, type Socket } from 'node:net';
import { CowmapError } from '../../errors.ts';
import * as nbd from '../protocol.ts';
import { type ExportInfo, negotiate } from './clientHandshake.ts';
import { NbdLinkError } from './nbdErrors.ts';
import { formatNbdUrl, type NbdAddress } from './nbdUrl.ts';
import { SocketReader } from './socketReader.ts';
import { Transmission } from './transmission.ts';

export interface NbdClientOptions {
  /** The bound of the TCP or Unix connect and the whole handshake. */
  readonly connectTimeoutMs: number;
  /** A request without its reply this long after it was sent fails the connection. */
  readonly requestTimeoutMs: number;
  /** Requests on the wire at once; more wait in the client's queue. */
  readonly inFlightMax: number;
  /** Requests (pieces of calls) waiting for a slot, at most (default 65536); past it a call fails with E_BAD_REQUEST. */
  readonly queuedRequestsMax?: number;
}

/**
 * The payload of a READ or WRITE when the server names no maximum, and the most this
 * client sends even when it names more: 32 MiB, which doc/proto.md says every server
 * should take and no peer should see as an attack.
 */
export const nbdPayloadMaxDefault = 32 * 1024 * 1024;

export class NbdClient {
  readonly exportSize: number;
  readonly canFlush: boolean;
  readonly canFua: boolean;
  readonly canWriteZeroes: boolean;
  readonly readOnly: boolean;
  /** The largest READ/WRITE payload sent: the server's maximum (at most 32 MiB), a multiple of blockSizeMin. */
  readonly payloadMax: number;
  /** Offsets and lengths are multiples of it (NBD_INFO_BLOCK_SIZE's minimum; 1 when the server named none). */
  readonly blockSizeMin: number;
  private readonly transmission: Transmission;
  private readonly options: NbdClientOptions;

  private constructor(transmission: Transmission, info: ExportInfo, options: NbdClientOptions) {
    this.transmission = transmission;
    this.options = options;
    this.exportSize = info.exportSize;
    const flags = (info.transmissionFlags & nbd.FLAG_HAS_FLAGS) !== 0 ? info.transmissionFlags : 0;
    this.canFlush = (flags & nbd.FLAG_SEND_FLUSH) !== 0;
    this.canFua = (flags & nbd.FLAG_SEND_FUA) !== 0;
    this.canWriteZeroes = (flags & nbd.FLAG_SEND_WRITE_ZEROES) !== 0;
    this.readOnly = (flags & nbd.FLAG_READ_ONLY) !== 0;
    this.blockSizeMin = info.blockSizeMin;
    const payloadMax = Math.min(info.payloadMaxAdvertised ?? nbdPayloadMaxDefault, nbdPayloadMaxDefault);
    this.payloadMax = payloadMax - (payloadMax % info.blockSizeMin);
  }

  /** Connects and negotiates; NbdLinkError (NbdHandshakeError when the server refuses the export) names the URI. */
  static async connect(address: NbdAddress, options: NbdClientOptions): Promise<NbdClient> {
    checkOptions(options);
    const url = formatNbdUrl(address);
    // One bound for the connect and the handshake together.
    const deadlineMs = Date.now() + options.connectTimeoutMs;
    const socket = await openSocket(address, options.connectTimeoutMs, url);
    const reader = new SocketReader(socket);
    const timer = setTimeout(
      () => reader.fail(new NbdLinkError(`no NBD handshake within ${options.connectTimeoutMs} ms`)),
      Math.max(0, deadlineMs - Date.now()),
    );
    try {
      const info = await negotiate(socket, reader, address.exportName);
      return new NbdClient(new Transmission(socket, reader.detach(), options), info, options);
    } catch (error) {
      socket.destroy();
      if (!(error instanceof NbdLinkError)) throw error;
      error.message = `${url}: ${error.message}`;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.checkRange('READ', offset, length);
    if (length === 0) return new Uint8Array(0);
    if (length <= this.payloadMax) return this.transmission.submit(nbd.CMD_READ, offset, length);
    const data = Buffer.allocUnsafe(length);
    const pieces = this.pieces(offset, length, this.payloadMax).map(async ([pieceOffset, pieceLength]) => {
      (await this.transmission.submit(nbd.CMD_READ, pieceOffset, pieceLength)).copy(data, pieceOffset - offset);
    });
    await Promise.all(pieces);
    return data;
  }

  /**
   * Resolves when the server answered every piece. `fua`: the reply comes once the
   * bytes are durable; on a server without FUA, the write is followed by a FLUSH.
   */
  async write(offset: number, bytes: Uint8Array, flags: { fua?: boolean } = {}): Promise<void> {
    this.checkWritable('WRITE', offset, bytes.length);
    const fua = flags.fua === true;
    const commandFlags = fua && this.canFua ? nbd.CMD_FLAG_FUA : 0;
    const pieces = this.pieces(offset, bytes.length, this.payloadMax).map(([pieceOffset, pieceLength]) => {
      const payload = bytes.subarray(pieceOffset - offset, pieceOffset - offset + pieceLength);
      return this.transmission.submit(nbd.CMD_WRITE, pieceOffset, pieceLength, commandFlags, payload);
    });
    await Promise.all(pieces);
    if (fua && !this.canFua) await this.flush();
  }

  /** WRITE_ZEROES, or writes of zeros on a server without it. */
  async writeZeroes(offset: number, length: number): Promise<void> {
    this.checkWritable('WRITE_ZEROES', offset, length);
    if (!this.canWriteZeroes) {
      // One buffer of zeros serves every piece: only the largest is allocated.
      const zeros = new Uint8Array(Math.min(length, this.payloadMax));
      const pieces = this.pieces(offset, length, this.payloadMax).map(([pieceOffset, pieceLength]) =>
        this.transmission.submit(nbd.CMD_WRITE, pieceOffset, pieceLength, 0, zeros.subarray(0, pieceLength)),
      );
      await Promise.all(pieces);
      return;
    }
    // doc/proto.md lets a server refuse a WRITE_ZEROES longer than the maximum payload: pieces of it.
    const pieces = this.pieces(offset, length, this.payloadMax).map(([pieceOffset, pieceLength]) =>
      this.transmission.submit(nbd.CMD_WRITE_ZEROES, pieceOffset, pieceLength),
    );
    await Promise.all(pieces);
  }

  /**
   * Makes durable every write answered before it (doc/proto.md, "Ordering of messages
   * and writes"). It is sent once every request started before it has its reply, so
   * it covers every write the caller started before calling it. On a server without
   * FLUSH (whose answered writes are durable) it only waits for those replies.
   */
  async flush(): Promise<void> {
    await this.transmission.settled();
    if (this.canFlush) await this.transmission.submit(nbd.CMD_FLUSH, 0, 0);
  }

  /** NBD_CMD_DISC once every outstanding request is answered, then the end of the connection. */
  close(): Promise<void> {
    return this.transmission.disconnect(this.options.requestTimeoutMs);
  }

  /** Drops the connection now: every outstanding request fails with NbdLinkError. */
  destroy(): void {
    this.transmission.fail(new NbdLinkError('the client dropped the connection'));
  }

  /** [offset, length] pieces of at most `pieceMax` bytes. */
  private pieces(offset: number, length: number, pieceMax: number): [number, number][] {
    const pieces: [number, number][] = [];
    for (let done = 0; done < length; done += pieceMax) pieces.push([offset + done, Math.min(pieceMax, length - done)]);
    return pieces;
  }

  private checkWritable(command: string, offset: number, length: number): void {
    if (this.readOnly) throw new CowmapError('E_BAD_REQUEST', `NBD ${command}: the export is read-only`);
    this.checkRange(command, offset, length);
  }

  /** doc/proto.md, "Size constraints": inside the export and aligned to the minimum block size. */
  private checkRange(command: string, offset: number, length: number): void {
    const where = `NBD ${command} of ${length} bytes at ${offset}`;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
      throw new CowmapError('E_BAD_REQUEST', `${where}: offset and length must be non-negative integers`);
    if (offset + length > this.exportSize)
      throw new CowmapError('E_BAD_REQUEST', `${where}: past the end of the export (${this.exportSize} bytes)`);
    if (offset % this.blockSizeMin !== 0 || length % this.blockSizeMin !== 0)
      throw new CowmapError(
        'E_BAD_REQUEST',
        `${where}: not aligned to the server's minimum block size ${this.blockSizeMin}`,
      );
  }
}

function checkOptions(options: NbdClientOptions): void {
  for (const key of ['connectTimeoutMs', 'requestTimeoutMs', 'inFlightMax', 'queuedRequestsMax'] as const) {
    const value = options[key];
    if (value === undefined && key === 'queuedRequestsMax') continue;
    if (!Number.isSafeInteger(value) || value! < 1)
      throw new CowmapError('E_BAD_REQUEST', `NbdClientOptions.${key} ${value}: expected a positive integer`);
  }
}

/** The connected socket (TCP without Nagle's delay); NbdLinkError when refused, absent or slower than `timeoutMs`. */
function openSocket(address: NbdAddress, timeoutMs: number, url: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      address.kind === 'tcp'
        ? netConnect({ host: address.host, port: address.port })
        : netConnect({ path: address.socketPath });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new NbdLinkError(`${url}: no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    const refused = (error: Error): void => {
      clearTimeout(timer);
      reject(new NbdLinkError(`${url}: cannot connect: ${error.message}`, { cause: error }));
    };
    socket.once('error', refused);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', refused);
      if (address.kind === 'tcp') socket.setNoDelay(true);
      resolve(socket);
    });
  });
}
