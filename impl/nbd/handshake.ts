// The fixed newstyle handshake and the option haggling (NetworkBlockDevice
// doc/proto.md): NBD_OPT_EXPORT_NAME / GO / INFO / LIST / ABORT, STRUCTURED_REPLY,
// LIST_META_CONTEXT and SET_META_CONTEXT. It reads from the connection's input and
// writes option replies; when the client picks the export it hands the connection a
// Session for the transmission phase.

import type { ByteQueue } from './byteQueue.ts';
import {
  contextSelected,
  contextsListed,
  type MetaContext,
  metaContexts,
  metaContextReplyData,
  parseMetaContextRequest,
} from './metaContexts.ts';
import * as nbd from './protocol.ts';

/** What the handshake settled for the transmission phase. */
export interface Session {
  /** NBD_OPT_STRUCTURED_REPLY was acknowledged. */
  structuredReplies: boolean;
  /** The metadata contexts selected by the last NBD_OPT_SET_META_CONTEXT: id -> name (metaContexts.ts). */
  readonly metaContexts: Map<number, string>;
  /**
   * The most extents in one BLOCK_STATUS chunk: the spec's 2^20, fewer when the
   * advertised payload maximum is smaller (no chunk may carry more than it).
   */
  readonly extentsMax: number;
}

/** The most extents of 8 bytes (after the 4-byte context id) that fit a chunk payload of `payloadMax` bytes. */
export function extentsMaxOf(payloadMax: number): number {
  return Math.max(1, Math.min(nbd.BLOCK_STATUS_EXTENTS_MAX, Math.floor((payloadMax - 4) / 8)));
}

/** What the handshake needs of its export. */
export interface ExportFacts {
  readonly exportName: string;
  readonly sizeBytes: number;
  readonly transmissionFlags: number;
  /** The largest READ/WRITE payload (NBD_INFO_BLOCK_SIZE maximum). */
  readonly payloadMax: number;
  /**
   * False: no metadata context is offered (an export without BLOCK_STATUS, such as
   * `cowmap receive`'s): LIST and SET answer none. Absent: every context of metaContexts.ts.
   */
  readonly metaContextsServed?: boolean;
  knowsExport(name: string): boolean;
}

/** What the handshake needs of its connection. */
export interface HandshakeLink {
  readonly input: ByteQueue;
  send(bytes: Buffer): void;
  close(reason: string | null): void;
}

/** The result of one step: need more bytes, handled a message, or the transmission phase starts. */
export type HandshakeStep = 'more' | 'handled' | 'closed' | 'transmission';

const optionDataMax = 64 * 1024;

export class Handshake {
  private readonly link: HandshakeLink;
  private readonly facts: ExportFacts;
  private state: 'clientFlags' | 'options' = 'clientFlags';
  private noZeroes = false;
  readonly session: Session;

  constructor(link: HandshakeLink, facts: ExportFacts) {
    this.link = link;
    this.facts = facts;
    this.session = { structuredReplies: false, metaContexts: new Map(), extentsMax: extentsMaxOf(facts.payloadMax) };
  }

  /** The server's greeting, sent when the connection opens. */
  greet(): void {
    const greeting = Buffer.alloc(18);
    greeting.writeBigUInt64BE(nbd.NBDMAGIC, 0);
    greeting.writeBigUInt64BE(nbd.IHAVEOPT, 8);
    greeting.writeUInt16BE(nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES, 16);
    this.link.send(greeting);
  }

  /** Handles one message if it is complete. */
  step(): HandshakeStep {
    return this.state === 'clientFlags' ? this.clientFlags() : this.option();
  }

  private clientFlags(): HandshakeStep {
    const input = this.link.input;
    if (input.length < 4) return 'more';
    const flags = input.take(4).readUInt32BE(0);
    const known = nbd.FLAG_C_FIXED_NEWSTYLE | nbd.FLAG_C_NO_ZEROES;
    if ((flags & ~known) !== 0) {
      this.link.close(`unknown client flags 0x${flags.toString(16)}`);
      return 'closed';
    }
    this.noZeroes = (flags & nbd.FLAG_C_NO_ZEROES) !== 0;
    this.state = 'options';
    return 'handled';
  }

  private option(): HandshakeStep {
    const input = this.link.input;
    if (input.length < nbd.OPTION_HEADER_SIZE) return 'more';
    const header = input.peek(nbd.OPTION_HEADER_SIZE);
    if (header.readBigUInt64BE(0) !== nbd.IHAVEOPT) {
      this.link.close('an option without the IHAVEOPT magic');
      return 'closed';
    }
    const option = header.readUInt32BE(8);
    const length = header.readUInt32BE(12);
    if (length > optionDataMax) {
      this.link.close(`option ${option} with ${length} bytes of data`);
      return 'closed';
    }
    if (input.length < nbd.OPTION_HEADER_SIZE + length) return 'more';
    input.skip(nbd.OPTION_HEADER_SIZE);
    return this.answer(option, input.take(length));
  }

  private answer(option: number, data: Buffer): HandshakeStep {
    switch (option) {
      case nbd.OPT_EXPORT_NAME:
        return this.exportName(data);
      case nbd.OPT_ABORT:
        this.reply(option, nbd.REP_ACK);
        this.link.close(null);
        return 'closed';
      case nbd.OPT_LIST:
        this.list(option, data);
        return 'handled';
      case nbd.OPT_INFO:
      case nbd.OPT_GO:
        return this.infoOrGo(option, data);
      case nbd.OPT_STRUCTURED_REPLY:
        this.structuredReply(option, data);
        return 'handled';
      case nbd.OPT_LIST_META_CONTEXT:
      case nbd.OPT_SET_META_CONTEXT:
        this.metaContext(option, data);
        return 'handled';
      default:
        this.error(option, nbd.REP_ERR_UNSUP, `option ${option} is not supported`);
        return 'handled';
    }
  }

  private list(option: number, data: Buffer): void {
    if (data.length !== 0) {
      this.error(option, nbd.REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
      return;
    }
    const name = Buffer.from(this.facts.exportName, 'utf8');
    const reply = Buffer.alloc(4 + name.length);
    reply.writeUInt32BE(name.length, 0);
    name.copy(reply, 4);
    this.reply(option, nbd.REP_SERVER, reply);
    this.reply(option, nbd.REP_ACK);
  }

  /** A repeated NBD_OPT_STRUCTURED_REPLY is acknowledged again: it changes nothing. */
  private structuredReply(option: number, data: Buffer): void {
    if (data.length !== 0) {
      this.error(option, nbd.REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
      return;
    }
    this.session.structuredReplies = true;
    this.reply(option, nbd.REP_ACK);
  }

  /**
   * LIST answers what the queries name (every context for no query), with id 0 as the
   * spec asks; SET selects the exactly named contexts, replacing the previous selection
   * even when it fails (the spec), and only after structured replies were negotiated.
   * LIST before them is answered (the spec lets a server refuse it, not must).
   */
  private metaContext(option: number, data: Buffer): void {
    const set = option === nbd.OPT_SET_META_CONTEXT;
    if (set) this.session.metaContexts.clear();
    if (set && !this.session.structuredReplies) {
      this.error(option, nbd.REP_ERR_INVALID, 'NBD_OPT_SET_META_CONTEXT before NBD_OPT_STRUCTURED_REPLY');
      return;
    }
    const request = parseMetaContextRequest(data);
    if (request === null) {
      this.error(option, nbd.REP_ERR_INVALID, 'malformed NBD_OPT_LIST/SET_META_CONTEXT data');
      return;
    }
    if (!this.facts.knowsExport(request.exportName)) {
      this.error(option, nbd.REP_ERR_UNKNOWN, `no export named '${request.exportName}'`);
      return;
    }
    const matched = new Set<MetaContext>();
    const served = this.facts.metaContextsServed !== false;
    for (const query of served ? request.queries : []) {
      if (set) {
        const context = contextSelected(query);
        if (context !== undefined) matched.add(context);
      } else {
        for (const context of contextsListed(query)) matched.add(context);
      }
    }
    const everyContext = served ? metaContexts : [];
    const answered = !set && request.queries.length === 0 ? everyContext : [...matched].sort((a, b) => a.id - b.id);
    for (const context of answered) {
      if (set) this.session.metaContexts.set(context.id, context.name);
      this.reply(option, nbd.REP_META_CONTEXT, metaContextReplyData(set ? context.id : 0, context.name));
    }
    this.reply(option, nbd.REP_ACK);
  }

  private exportName(data: Buffer): HandshakeStep {
    const name = data.toString('utf8');
    if (!this.facts.knowsExport(name)) {
      this.link.close(`NBD_OPT_EXPORT_NAME of an unknown export '${name}'`);
      return 'closed';
    }
    const reply = Buffer.alloc(this.noZeroes ? 10 : 134);
    reply.writeBigUInt64BE(BigInt(this.facts.sizeBytes), 0);
    reply.writeUInt16BE(this.facts.transmissionFlags, 8);
    this.link.send(reply);
    return 'transmission';
  }

  private infoOrGo(option: number, data: Buffer): HandshakeStep {
    const invalid = (): HandshakeStep => {
      this.error(option, nbd.REP_ERR_INVALID, 'malformed NBD_OPT_INFO/GO data');
      return 'handled';
    };
    if (data.length < 6) return invalid();
    const nameLength = data.readUInt32BE(0);
    if (4 + nameLength + 2 > data.length) return invalid();
    const name = data.subarray(4, 4 + nameLength).toString('utf8');
    const requests = data.readUInt16BE(4 + nameLength);
    if (4 + nameLength + 2 + 2 * requests !== data.length) return invalid();
    if (!this.facts.knowsExport(name)) {
      this.error(option, nbd.REP_ERR_UNKNOWN, `no export named '${name}'`);
      return 'handled';
    }
    const wanted = new Set<number>();
    for (let index = 0; index < requests; index++) wanted.add(data.readUInt16BE(4 + nameLength + 2 + 2 * index));
    const exportInfo = Buffer.alloc(12);
    exportInfo.writeUInt16BE(nbd.INFO_EXPORT, 0);
    exportInfo.writeBigUInt64BE(BigInt(this.facts.sizeBytes), 2);
    exportInfo.writeUInt16BE(this.facts.transmissionFlags, 10);
    this.reply(option, nbd.REP_INFO, exportInfo);
    if (wanted.has(nbd.INFO_BLOCK_SIZE)) {
      const blockSize = Buffer.alloc(14);
      blockSize.writeUInt16BE(nbd.INFO_BLOCK_SIZE, 0);
      blockSize.writeUInt32BE(1, 2);
      // The preferred size is a power of 2 no larger than the maximum (doc/proto.md):
      // 4096, or less under a smaller --max-request-bytes.
      blockSize.writeUInt32BE(Math.min(4096, 2 ** Math.floor(Math.log2(this.facts.payloadMax))), 6);
      blockSize.writeUInt32BE(this.facts.payloadMax, 10);
      this.reply(option, nbd.REP_INFO, blockSize);
    }
    this.reply(option, nbd.REP_ACK);
    return option === nbd.OPT_GO ? 'transmission' : 'handled';
  }

  private reply(option: number, type: number, data: Buffer = Buffer.alloc(0)): void {
    const header = Buffer.alloc(20);
    header.writeBigUInt64BE(nbd.OPTION_REPLY_MAGIC, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(type, 12);
    header.writeUInt32BE(data.length, 16);
    this.link.send(Buffer.concat([header, data]));
  }

  private error(option: number, type: number, message: string): void {
    this.reply(option, type, Buffer.from(message, 'utf8'));
  }
}
