// The constants of the NBD protocol (NetworkBlockDevice, doc/proto.md) that the
// cowmap export uses: the fixed newstyle handshake, the option haggling (with
// structured replies and metadata contexts), and the transmission phase with simple
// and structured replies. All integers are big-endian on the wire.

export const NBDMAGIC = 0x4e42444d41474943n;
export const IHAVEOPT = 0x49484156454f5054n;
/** The magic of every option reply (NBD_REP_*). */
export const OPTION_REPLY_MAGIC = 0x0003e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

// Handshake flags (server) and client flags.
export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
export const FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_C_NO_ZEROES = 1 << 1;

// Options.
export const OPT_EXPORT_NAME = 1;
export const OPT_ABORT = 2;
export const OPT_LIST = 3;
export const OPT_INFO = 6;
export const OPT_GO = 7;
export const OPT_STRUCTURED_REPLY = 8;
export const OPT_LIST_META_CONTEXT = 9;
export const OPT_SET_META_CONTEXT = 10;

// Option reply types.
export const REP_ACK = 1;
export const REP_SERVER = 2;
export const REP_INFO = 3;
export const REP_META_CONTEXT = 4;
const REP_FLAG_ERROR = 0x80000000;
export const REP_ERR_UNSUP = (REP_FLAG_ERROR | 1) >>> 0;
export const REP_ERR_POLICY = (REP_FLAG_ERROR | 2) >>> 0;
export const REP_ERR_INVALID = (REP_FLAG_ERROR | 3) >>> 0;
export const REP_ERR_UNKNOWN = (REP_FLAG_ERROR | 6) >>> 0;

// NBD_INFO_* items of NBD_REP_INFO.
export const INFO_EXPORT = 0;
export const INFO_NAME = 1;
export const INFO_DESCRIPTION = 2;
export const INFO_BLOCK_SIZE = 3;

// Transmission flags.
export const FLAG_HAS_FLAGS = 1 << 0;
export const FLAG_READ_ONLY = 1 << 1;
export const FLAG_SEND_FLUSH = 1 << 2;
export const FLAG_SEND_FUA = 1 << 3;
export const FLAG_ROTATIONAL = 1 << 4;
export const FLAG_SEND_TRIM = 1 << 5;
export const FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const FLAG_CAN_MULTI_CONN = 1 << 8;

// Commands and command flags.
export const CMD_READ = 0;
export const CMD_WRITE = 1;
export const CMD_DISC = 2;
export const CMD_FLUSH = 3;
export const CMD_TRIM = 4;
export const CMD_WRITE_ZEROES = 6;
export const CMD_BLOCK_STATUS = 7;
export const CMD_FLAG_FUA = 1 << 0;
export const CMD_FLAG_NO_HOLE = 1 << 1;
export const CMD_FLAG_REQ_ONE = 1 << 3;

// Structured reply chunks: the flag of the last chunk of a reply, and the chunk types.
export const REPLY_FLAG_DONE = 1 << 0;
export const REPLY_TYPE_NONE = 0;
export const REPLY_TYPE_OFFSET_DATA = 1;
export const REPLY_TYPE_BLOCK_STATUS = 5;
export const REPLY_TYPE_ERROR = (1 << 15) | 1;

// Status flags of BLOCK_STATUS extents: base:allocation's, and qemu:dirty-bitmap:*'s
// (QEMU docs/interop/nbd.rst).
export const STATE_HOLE = 1 << 0;
export const STATE_ZERO = 1 << 1;
export const STATE_DIRTY = 1 << 0;

// Error values of a simple reply.
export const EPERM = 1;
export const EIO = 5;
export const ENOMEM = 12;
export const EINVAL = 22;
export const ENOSPC = 28;
export const EOVERFLOW = 75;
export const ENOTSUP = 95;
export const ESHUTDOWN = 108;

/** Sizes of the fixed parts of the messages. */
export const REQUEST_HEADER_SIZE = 28;
export const OPTION_HEADER_SIZE = 16;
export const SIMPLE_REPLY_HEADER_SIZE = 16;
export const STRUCTURED_REPLY_HEADER_SIZE = 20;

/** The longest string the protocol carries (an error chunk's message, a context name), in bytes. */
export const STRING_BYTES_MAX = 4096;
/** The most extents in one NBD_REPLY_TYPE_BLOCK_STATUS chunk that the spec suggests (2^20: 8 MiB). */
export const BLOCK_STATUS_EXTENTS_MAX = 1 << 20;

export const commandNames: Record<number, string> = {
  [CMD_READ]: 'READ',
  [CMD_WRITE]: 'WRITE',
  [CMD_DISC]: 'DISC',
  [CMD_FLUSH]: 'FLUSH',
  [CMD_TRIM]: 'TRIM',
  [CMD_WRITE_ZEROES]: 'WRITE_ZEROES',
  [CMD_BLOCK_STATUS]: 'BLOCK_STATUS',
};

/** A request header (doc/proto.md, "Request message"); `magic` other than REQUEST_MAGIC only to test a server. */
export function encodeRequest(request: {
  readonly type: number;
  readonly offset: number;
  readonly length: number;
  readonly cookie: bigint;
  readonly flags?: number;
  readonly magic?: number;
}): Buffer {
  const header = Buffer.alloc(REQUEST_HEADER_SIZE);
  header.writeUInt32BE(request.magic ?? REQUEST_MAGIC, 0);
  header.writeUInt16BE(request.flags ?? 0, 4);
  header.writeUInt16BE(request.type, 6);
  header.writeBigUInt64BE(request.cookie, 8);
  header.writeBigUInt64BE(BigInt(request.offset), 16);
  header.writeUInt32BE(request.length, 24);
  return header;
}

// What a client needs beyond the server's constants: the remaining option reply errors
// (doc/proto.md, "Option reply types"), the oldstyle greeting's magic (to refuse it by
// name), and the names of errno values and option replies for its error messages.
export const REP_ERR_PLATFORM = (REP_FLAG_ERROR | 4) >>> 0;
export const REP_ERR_TLS_REQD = (REP_FLAG_ERROR | 5) >>> 0;
export const REP_ERR_SHUTDOWN = (REP_FLAG_ERROR | 7) >>> 0;
export const REP_ERR_BLOCK_SIZE_REQD = (REP_FLAG_ERROR | 8) >>> 0;
export const REP_ERR_TOO_BIG = (REP_FLAG_ERROR | 9) >>> 0;
/** True for every NBD_REP_ERR_* (bit 31 set). */
export function isOptionReplyError(type: number): boolean {
  return (type & REP_FLAG_ERROR) !== 0;
}
/** The second magic of an oldstyle greeting, where a newstyle server sends IHAVEOPT. */
export const CLISERV_MAGIC = 0x00420281861253n;

export const errnoNames: Record<number, string> = {
  [EPERM]: 'EPERM',
  [EIO]: 'EIO',
  [ENOMEM]: 'ENOMEM',
  [EINVAL]: 'EINVAL',
  [ENOSPC]: 'ENOSPC',
  [EOVERFLOW]: 'EOVERFLOW',
  [ENOTSUP]: 'ENOTSUP',
  [ESHUTDOWN]: 'ESHUTDOWN',
};

export const optionReplyNames: Record<number, string> = {
  [REP_ACK]: 'NBD_REP_ACK',
  [REP_SERVER]: 'NBD_REP_SERVER',
  [REP_INFO]: 'NBD_REP_INFO',
  [REP_META_CONTEXT]: 'NBD_REP_META_CONTEXT',
  [REP_ERR_UNSUP]: 'NBD_REP_ERR_UNSUP',
  [REP_ERR_POLICY]: 'NBD_REP_ERR_POLICY',
  [REP_ERR_INVALID]: 'NBD_REP_ERR_INVALID',
  [REP_ERR_PLATFORM]: 'NBD_REP_ERR_PLATFORM',
  [REP_ERR_TLS_REQD]: 'NBD_REP_ERR_TLS_REQD',
  [REP_ERR_UNKNOWN]: 'NBD_REP_ERR_UNKNOWN',
  [REP_ERR_SHUTDOWN]: 'NBD_REP_ERR_SHUTDOWN',
  [REP_ERR_BLOCK_SIZE_REQD]: 'NBD_REP_ERR_BLOCK_SIZE_REQD',
  [REP_ERR_TOO_BIG]: 'NBD_REP_ERR_TOO_BIG',
};
