// The client's side of the fixed newstyle handshake (doc/proto.md, "Newstyle
// negotiation" and "Option types"): NBD_OPT_GO with the export name and a request for
// NBD_INFO_BLOCK_SIZE, the NBD_REP_INFO replies until NBD_REP_ACK; NBD_OPT_EXPORT_NAME
// when the server is not fixed newstyle or answers NBD_OPT_GO with NBD_REP_ERR_UNSUP
// (as libnbd falls back). Every reply length is bounded; the caller bounds the time.

import type { Socket } from 'node:net';
import * as nbd from '../protocol.ts';
import { NbdHandshakeError, NbdLinkError, optionReplyNameOf } from './nbdErrors.ts';
import type { SocketReader } from './socketReader.ts';

/** What the handshake learnt of the export. */
export interface ExportInfo {
  readonly exportSize: number;
  readonly transmissionFlags: number;
  /** NBD_INFO_BLOCK_SIZE's minimum (1 when the server sent none): offsets and lengths are its multiples. */
  readonly blockSizeMin: number;
  /** NBD_INFO_BLOCK_SIZE's maximum payload, or null when the server sent none. */
  readonly payloadMaxAdvertised: number | null;
}

/** The longest option reply accepted: an NBD_REP_INFO is at most a few bytes, an error message at most 4096. */
export const optionReplyBytesMax = 64 * 1024;
/** The most NBD_REP_INFO replies accepted before the ACK (a client asks for one item; a server sends a few). */
const infoRepliesMax = 64;
/** The largest minimum block size doc/proto.md allows. */
const blockSizeMinMax = 1 << 16;

export async function negotiate(socket: Socket, reader: SocketReader, exportName: string): Promise<ExportInfo> {
  const handshakeFlags = await readGreeting(reader);
  const fixed = (handshakeFlags & nbd.FLAG_FIXED_NEWSTYLE) !== 0;
  const noZeroes = fixed && (handshakeFlags & nbd.FLAG_NO_ZEROES) !== 0;
  const clientFlags = Buffer.alloc(4);
  clientFlags.writeUInt32BE((fixed ? nbd.FLAG_C_FIXED_NEWSTYLE : 0) | (noZeroes ? nbd.FLAG_C_NO_ZEROES : 0));
  socket.write(clientFlags);
  if (fixed) {
    sendOption(socket, nbd.OPT_GO, goData(exportName));
    const info = await readGoReplies(socket, reader, exportName);
    if (info !== 'unsupported') return info;
  }
  return exportNameOption(socket, reader, exportName, noZeroes);
}

async function readGreeting(reader: SocketReader): Promise<number> {
  const greeting = await reader.read(18);
  if (greeting.readBigUInt64BE(0) !== nbd.NBDMAGIC)
    throw new NbdLinkError('not an NBD server (no NBDMAGIC in its greeting)');
  const magic = greeting.readBigUInt64BE(8);
  if (magic === nbd.CLISERV_MAGIC)
    throw new NbdLinkError('the server speaks the oldstyle handshake, which this client does not');
  if (magic !== nbd.IHAVEOPT)
    throw new NbdLinkError(`the server's greeting has an unknown magic 0x${magic.toString(16)}`);
  return greeting.readUInt16BE(16);
}

function sendOption(socket: Socket, option: number, data: Buffer): void {
  const header = Buffer.alloc(nbd.OPTION_HEADER_SIZE);
  header.writeBigUInt64BE(nbd.IHAVEOPT, 0);
  header.writeUInt32BE(option, 8);
  header.writeUInt32BE(data.length, 12);
  socket.write(Buffer.concat([header, data]));
}

function goData(exportName: string): Buffer {
  const name = Buffer.from(exportName);
  const data = Buffer.alloc(4 + name.length + 2 + 2);
  data.writeUInt32BE(name.length, 0);
  name.copy(data, 4);
  data.writeUInt16BE(1, 4 + name.length);
  data.writeUInt16BE(nbd.INFO_BLOCK_SIZE, 4 + name.length + 2);
  return data;
}

/** The replies to NBD_OPT_GO up to its ACK; 'unsupported' for NBD_REP_ERR_UNSUP; an error reply throws. */
async function readGoReplies(
  socket: Socket,
  reader: SocketReader,
  exportName: string,
): Promise<ExportInfo | 'unsupported'> {
  let export_: { size: number; flags: number } | null = null;
  let blockSize: { min: number; max: number } | null = null;
  for (let replies = 1; ; replies++) {
    if (replies > infoRepliesMax) throw new NbdLinkError(`more than ${infoRepliesMax} replies to NBD_OPT_GO`);
    const reply = await readOptionReply(reader, nbd.OPT_GO);
    if (reply.type === nbd.REP_INFO) {
      const item = parseInfo(reply.data);
      if (item?.kind === 'export') export_ = item;
      else if (item?.kind === 'blockSize') blockSize = item;
    } else if (reply.type === nbd.REP_ACK) {
      if (export_ === null) throw new NbdLinkError('the server acknowledged NBD_OPT_GO without NBD_INFO_EXPORT');
      return {
        exportSize: export_.size,
        transmissionFlags: export_.flags,
        blockSizeMin: blockSize?.min ?? 1,
        payloadMaxAdvertised: blockSize?.max ?? null,
      };
    } else if (reply.type === nbd.REP_ERR_UNSUP) {
      return 'unsupported';
    } else {
      // A soft disconnect (doc/proto.md, "Termination of the session during option haggling").
      sendOption(socket, nbd.OPT_ABORT, Buffer.alloc(0));
      throw refusal(exportName, reply.type, reply.data);
    }
  }
}

/** What a user can do about the refusals that have a remedy. */
const refusalHints: Record<number, string> = {
  [nbd.REP_ERR_UNKNOWN]: ' (the server has no export of that name: check the path of the URI)',
  [nbd.REP_ERR_TLS_REQD]: ' (the server requires TLS, which this client does not speak)',
  [nbd.REP_ERR_SHUTDOWN]: ' (the server is shutting down)',
};

function refusal(exportName: string, type: number, data: Buffer): NbdLinkError {
  const said = data.length > 0 ? `: ${JSON.stringify(data.toString('utf8'))}` : '';
  if (!nbd.isOptionReplyError(type))
    return new NbdLinkError(
      `the server answered NBD_OPT_GO with ${optionReplyNameOf(type)}, which is not a reply to it`,
    );
  return new NbdHandshakeError(
    exportName,
    type,
    `the NBD server refused the export '${exportName}' with ${optionReplyNameOf(type)}${said}${refusalHints[type] ?? ''}`,
  );
}

async function readOptionReply(reader: SocketReader, option: number): Promise<{ type: number; data: Buffer }> {
  const header = await reader.read(20);
  if (header.readBigUInt64BE(0) !== nbd.OPTION_REPLY_MAGIC) throw new NbdLinkError('an option reply without its magic');
  const repliedTo = header.readUInt32BE(8);
  if (repliedTo !== option) throw new NbdLinkError(`an option reply to option ${repliedTo} where ${option} was sent`);
  const length = header.readUInt32BE(16);
  if (length > optionReplyBytesMax)
    throw new NbdLinkError(`an option reply of ${length} bytes (at most ${optionReplyBytesMax} accepted)`);
  return { type: header.readUInt32BE(12), data: await reader.read(length) };
}

type InfoItem =
  | { kind: 'export'; size: number; flags: number }
  | { kind: 'blockSize'; min: number; max: number }
  | null;

/** An NBD_REP_INFO's item; null for the types this client does not use (doc/proto.md: ignore them). */
function parseInfo(data: Buffer): InfoItem {
  if (data.length < 2) throw new NbdLinkError(`an NBD_REP_INFO of ${data.length} bytes`);
  const type = data.readUInt16BE(0);
  if (type === nbd.INFO_EXPORT) {
    if (data.length !== 12) throw new NbdLinkError(`NBD_INFO_EXPORT of ${data.length} bytes (12 expected)`);
    return { kind: 'export', size: exportSizeOf(data.readBigUInt64BE(2)), flags: data.readUInt16BE(10) };
  }
  if (type === nbd.INFO_BLOCK_SIZE) {
    if (data.length !== 14) throw new NbdLinkError(`NBD_INFO_BLOCK_SIZE of ${data.length} bytes (14 expected)`);
    const min = data.readUInt32BE(2);
    const max = data.readUInt32BE(10);
    // doc/proto.md, "Size constraints": the minimum is a power of 2 up to 64 KiB, the maximum at least the minimum.
    if (min === 0 || (min & (min - 1)) !== 0 || min > blockSizeMinMax || max < min)
      throw new NbdLinkError(
        `NBD_INFO_BLOCK_SIZE with minimum ${min} and maximum payload ${max} breaks doc/proto.md's constraints`,
      );
    return { kind: 'blockSize', min, max };
  }
  return null;
}

function exportSizeOf(size: bigint): number {
  if (size > BigInt(Number.MAX_SAFE_INTEGER))
    throw new NbdLinkError(`an export of ${size} bytes is larger than this client handles`);
  return Number(size);
}

/** NBD_OPT_EXPORT_NAME: no reply on refusal, the server just closes the connection. */
async function exportNameOption(
  socket: Socket,
  reader: SocketReader,
  exportName: string,
  noZeroes: boolean,
): Promise<ExportInfo> {
  sendOption(socket, nbd.OPT_EXPORT_NAME, Buffer.from(exportName));
  let reply: Buffer;
  try {
    reply = await reader.read(10 + (noZeroes ? 0 : 124));
  } catch (error) {
    if (!reader.closedByPeer) throw error;
    throw new NbdHandshakeError(
      exportName,
      null,
      `the NBD server closed the connection after NBD_OPT_EXPORT_NAME '${exportName}' (its way to refuse an export it does not have)`,
    );
  }
  return {
    exportSize: exportSizeOf(reply.readBigUInt64BE(0)),
    transmissionFlags: reply.readUInt16BE(8),
    blockSizeMin: 1,
    payloadMaxAdvertised: null,
  };
}
