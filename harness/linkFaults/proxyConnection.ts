// One client connection through the fault proxy (faultProxy.ts): the bytes of both
// directions framed as NBD messages, so that a fault lands on a message boundary
// (or, for a mid-payload drop, inside a WRITE's payload on purpose). The handshake
// passes through untouched; it is followed only to know where the transmission
// phase starts (the ACK of NBD_OPT_GO, or the reply to NBD_OPT_EXPORT_NAME) and the
// export's size. In transmission, requests and simple replies are parsed; a
// connection that negotiated structured replies, or that says anything the framing
// does not know, is passed through opaque, without faults.

import { connect, type Socket } from 'node:net';
import { ByteQueue } from '../../impl/nbd/byteQueue.ts';
import * as nbd from '../../impl/nbd/protocol.ts';

/** A parsed request of the transmission phase. */
export interface ProxiedRequest {
  readonly type: number;
  readonly flags: number;
  readonly cookie: bigint;
  readonly offset: number;
  readonly length: number;
  /** A WRITE's payload (empty for every other command). */
  readonly payload: Buffer;
}

/** What the proxy does with a request (faultProxy.ts decides). */
export interface RequestDecision {
  readonly action: 'forward' | 'dropBefore' | 'dropAfter' | 'dropMidPayload' | 'answer';
  /** 'answer': the errno of the reply the proxy sends instead of forwarding. */
  readonly answerErrno?: number;
  /** 'forward': the errno its reply is turned into (the far side performed the request). */
  readonly replyErrno?: number;
  /** Its reply held this long (and every reply behind it). */
  readonly delayMs?: number;
}

/** The proxy as a connection sees it. */
export interface ConnectionHost {
  decide(connection: ProxyConnection, request: ProxiedRequest): RequestDecision;
  /** A reply from the far side, before it goes on (a FLUSH's success makes the durable snapshot). */
  replied(request: { readonly type: number }, error: number): void;
  closed(connection: ProxyConnection, why: string): void;
  /** How to reach the far side. */
  readonly upstreamPath: string;
}

interface InFlight {
  readonly type: number;
  readonly length: number;
  readonly replyErrno?: number;
  readonly delayMs?: number;
}

const greetingBytes = 18;
const clientFlagsBytes = 4;
const optionHeaderBytes = 16;
const optionReplyHeaderBytes = 20;
const exportNameReplyBytes = 10;
const exportNameZeroesBytes = 124;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class ProxyConnection {
  private upstream: Socket | null = null;
  private readonly fromClient = new ByteQueue();
  private readonly fromServer = new ByteQueue();
  private clientPhase: 'flags' | 'options' | 'transmission' | 'opaque' = 'flags';
  private serverPhase: 'greeting' | 'options' | 'transmission' | 'opaque' = 'greeting';
  private lastOption = -1;
  private clientNoZeroes = false;
  private serverNoZeroes = false;
  private readonly inFlight = new Map<bigint, InFlight>();
  private output: Promise<void> = Promise.resolve();
  private ended = false;
  /** The export's size, from NBD_INFO_EXPORT or the NBD_OPT_EXPORT_NAME reply (0 until known). */
  exportSize = 0;
  /** Passed through unparsed (structured replies, or framing it did not know). */
  opaque = false;

  constructor(
    private readonly host: ConnectionHost,
    readonly client: Socket,
  ) {
    client.setNoDelay(true);
    client.on('data', (chunk: Buffer) => {
      this.fromClient.push(chunk);
      this.pumpClient();
    });
    client.on('error', (error) => this.destroy(`client error ${error.message}`));
    client.on('close', () => this.destroy('client closed'));
  }

  /** Connects to the far side (the proxy waits until it is up first). */
  attach(): void {
    if (this.ended) return;
    const upstream = connect({ path: this.host.upstreamPath });
    this.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('data', (chunk: Buffer) => {
      this.fromServer.push(chunk);
      this.pumpServer();
    });
    upstream.on('error', (error) => this.destroy(`far side error ${error.message}`));
    upstream.on('close', () => this.destroy('far side closed'));
    upstream.once('connect', () => this.pumpClient());
  }

  /** Both sockets ended abruptly: the client sees its connection drop. `why` goes to the proxy's trace. */
  destroy(why: string): void {
    if (this.ended) return;
    this.ended = true;
    this.client.destroy();
    this.upstream?.destroy();
    this.host.closed(this, why);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  private toServer(bytes: Buffer, then?: () => void): void {
    this.upstream!.write(bytes, then === undefined ? undefined : () => then());
  }

  /** To the client in order, each after the delay of what is ahead of it. */
  private toClient(bytes: Buffer, delayMs = 0): void {
    this.output = this.output.then(async () => {
      if (delayMs > 0) await pause(delayMs);
      if (!this.ended) this.client.write(bytes);
    });
  }

  private pumpClient(): void {
    if (this.upstream === null || this.upstream.connecting) return;
    while (!this.ended && this.takeClientMessage()) {
      // One message at a time: a fault may end the connection between two of them.
    }
  }

  /** Frames and handles one client message; false when it is not all here yet. */
  private takeClientMessage(): boolean {
    const queue = this.fromClient;
    if (this.clientPhase === 'opaque') {
      if (queue.length === 0) return false;
      this.toServer(queue.take(queue.length));
      return true;
    }
    if (this.clientPhase === 'flags') {
      if (queue.length < clientFlagsBytes) return false;
      const flags = queue.take(clientFlagsBytes);
      this.clientNoZeroes = (flags.readUInt32BE(0) & nbd.FLAG_C_NO_ZEROES) !== 0;
      this.toServer(flags);
      this.clientPhase = 'options';
      return true;
    }
    if (this.clientPhase === 'options') {
      if (queue.length < optionHeaderBytes) return false;
      const length = queue.peek(optionHeaderBytes).readUInt32BE(12);
      if (queue.length < optionHeaderBytes + length) return false;
      const option = queue.take(optionHeaderBytes + length);
      this.lastOption = option.readUInt32BE(8);
      this.toServer(option);
      if (this.lastOption === nbd.OPT_GO || this.lastOption === nbd.OPT_EXPORT_NAME) this.clientPhase = 'transmission';
      return true;
    }
    return this.takeRequest();
  }

  private takeRequest(): boolean {
    const queue = this.fromClient;
    if (queue.length < nbd.REQUEST_HEADER_SIZE) return false;
    const header = queue.peek(nbd.REQUEST_HEADER_SIZE);
    if (header.readUInt32BE(0) !== nbd.REQUEST_MAGIC || this.serverPhase === 'opaque') {
      this.goOpaque();
      return true;
    }
    const type = header.readUInt16BE(6);
    const length = header.readUInt32BE(24);
    const payloadBytes = type === nbd.CMD_WRITE ? length : 0;
    if (queue.length < nbd.REQUEST_HEADER_SIZE + payloadBytes) return false;
    const message = queue.take(nbd.REQUEST_HEADER_SIZE + payloadBytes);
    const request: ProxiedRequest = {
      type,
      flags: message.readUInt16BE(4),
      cookie: message.readBigUInt64BE(8),
      offset: Number(message.readBigUInt64BE(16)),
      length,
      payload: message.subarray(nbd.REQUEST_HEADER_SIZE),
    };
    this.handleRequest(request, message);
    return true;
  }

  private handleRequest(request: ProxiedRequest, message: Buffer): void {
    if (request.type === nbd.CMD_DISC) {
      this.toServer(message);
      return;
    }
    const decision = this.host.decide(this, request);
    const end = () => this.destroy(`fault ${decision.action}`);
    switch (decision.action) {
      case 'dropBefore':
        this.destroy('fault dropBefore');
        break;
      case 'dropAfter':
        this.toServer(message, end);
        break;
      case 'dropMidPayload':
        this.toServer(message.subarray(0, nbd.REQUEST_HEADER_SIZE + Math.floor(request.payload.length / 2)), end);
        break;
      case 'answer':
        this.toClient(simpleReply(decision.answerErrno!, request.cookie), decision.delayMs);
        break;
      case 'forward':
        this.inFlight.set(request.cookie, {
          type: request.type,
          length: request.length,
          ...(decision.replyErrno === undefined ? {} : { replyErrno: decision.replyErrno }),
          ...(decision.delayMs === undefined ? {} : { delayMs: decision.delayMs }),
        });
        this.toServer(message);
        break;
    }
  }

  private goOpaque(): void {
    this.opaque = true;
    this.clientPhase = 'opaque';
    this.serverPhase = 'opaque';
    this.pumpServer();
    this.pumpClient();
  }

  private pumpServer(): void {
    while (!this.ended && this.takeServerMessage()) {
      // As pumpClient.
    }
  }

  private takeServerMessage(): boolean {
    const queue = this.fromServer;
    switch (this.serverPhase) {
      case 'opaque':
        if (queue.length === 0) return false;
        this.toClient(queue.take(queue.length));
        return true;
      case 'greeting': {
        if (queue.length < greetingBytes) return false;
        const greeting = queue.take(greetingBytes);
        if (greeting.readBigUInt64BE(8) !== nbd.IHAVEOPT) this.opaque = true;
        this.serverNoZeroes = (greeting.readUInt16BE(16) & nbd.FLAG_NO_ZEROES) !== 0;
        this.toClient(greeting);
        if (this.opaque) this.goOpaque();
        else this.serverPhase = 'options';
        return true;
      }
      case 'options':
        return this.lastOption === nbd.OPT_EXPORT_NAME ? this.takeExportNameReply() : this.takeOptionReply();
      case 'transmission':
        return this.takeReply();
    }
  }

  private takeExportNameReply(): boolean {
    const queue = this.fromServer;
    const bytes = exportNameReplyBytes + (this.clientNoZeroes && this.serverNoZeroes ? 0 : exportNameZeroesBytes);
    if (queue.length < bytes) return false;
    const reply = queue.take(bytes);
    this.exportSize = Number(reply.readBigUInt64BE(0));
    this.toClient(reply);
    this.serverPhase = 'transmission';
    return true;
  }

  private takeOptionReply(): boolean {
    const queue = this.fromServer;
    if (queue.length < optionReplyHeaderBytes) return false;
    const length = queue.peek(optionReplyHeaderBytes).readUInt32BE(16);
    if (queue.length < optionReplyHeaderBytes + length) return false;
    const reply = queue.take(optionReplyHeaderBytes + length);
    const option = reply.readUInt32BE(8);
    const type = reply.readUInt32BE(12);
    if (type === nbd.REP_INFO && length >= 12 && reply.readUInt16BE(optionReplyHeaderBytes) === nbd.INFO_EXPORT)
      this.exportSize = Number(reply.readBigUInt64BE(optionReplyHeaderBytes + 2));
    this.toClient(reply);
    if (option === nbd.OPT_STRUCTURED_REPLY && type === nbd.REP_ACK) this.opaque = true;
    if (option === nbd.OPT_GO && type === nbd.REP_ACK) {
      this.serverPhase = 'transmission';
      if (this.opaque) this.goOpaque();
    } else if (option === nbd.OPT_GO && (type & 0x80000000) !== 0) {
      // NBD_OPT_GO refused: the client may go on haggling.
      this.clientPhase = 'options';
    }
    return true;
  }

  private takeReply(): boolean {
    const queue = this.fromServer;
    if (queue.length < nbd.SIMPLE_REPLY_HEADER_SIZE) return false;
    const header = queue.peek(nbd.SIMPLE_REPLY_HEADER_SIZE);
    const cookie = header.readBigUInt64BE(8);
    const request = this.inFlight.get(cookie);
    if (header.readUInt32BE(0) !== nbd.SIMPLE_REPLY_MAGIC || request === undefined) {
      this.goOpaque();
      return true;
    }
    const error = header.readUInt32BE(4);
    const dataBytes = request.type === nbd.CMD_READ && error === 0 ? request.length : 0;
    if (queue.length < nbd.SIMPLE_REPLY_HEADER_SIZE + dataBytes) return false;
    const reply = queue.take(nbd.SIMPLE_REPLY_HEADER_SIZE + dataBytes);
    this.inFlight.delete(cookie);
    this.host.replied(request, error);
    if (request.replyErrno !== undefined) {
      // An error reply carries no data, even for a READ.
      this.toClient(simpleReply(request.replyErrno, cookie), request.delayMs);
      return true;
    }
    this.toClient(reply, request.delayMs);
    return true;
  }
}

/** A simple reply header with `errno` (0: success, no data). */
export function simpleReply(errno: number, cookie: bigint): Buffer {
  const reply = Buffer.alloc(nbd.SIMPLE_REPLY_HEADER_SIZE);
  reply.writeUInt32BE(nbd.SIMPLE_REPLY_MAGIC, 0);
  reply.writeUInt32BE(errno, 4);
  reply.writeBigUInt64BE(cookie, 8);
  return reply;
}
