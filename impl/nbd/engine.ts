// Runs the requests of the transmission phase against the volume and answers them.
// Today one request at a time, in arrival order: each runs to its end (its I/O
// durable) before the next one.

import { CowmapError } from '../errors.ts';
import type { ReplicatedVolume } from '../replicatedVolume.ts';
import { blockStatusExtents } from './blockStatus.ts';
import type { Session } from './handshake.ts';
import * as nbd from './protocol.ts';
import type { Replies } from './replies.ts';

/** One framed request of a connection. */
export interface Request {
  readonly type: number;
  readonly flags: number;
  readonly cookie: Buffer;
  readonly offset: bigint;
  readonly length: number;
  /** A WRITE's payload; null for every other command. */
  readonly payload: Buffer | null;
}

/** What a request needs of the connection it came on. */
export interface RequestOrigin {
  readonly replies: Replies;
  readonly session: Session;
}

export interface EngineOptions {
  readonly payloadMax: number;
  readonly log: (line: string) => void;
}

const zeroChunk = 4 * 1024 * 1024;

export class Engine {
  private readonly volume: ReplicatedVolume;
  private readonly options: EngineOptions;

  constructor(volume: ReplicatedVolume, options: EngineOptions) {
    this.volume = volume;
    this.options = options;
  }

  /** Runs one request (never DISC: the connection handles it) and sends its reply. */
  submit(origin: RequestOrigin, request: Request): void {
    const { type, flags, cookie, offset, length } = request;
    const replies = origin.replies;
    const knownFlags = nbd.CMD_FLAG_FUA | nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_REQ_ONE;
    if (nbd.commandNames[type] === undefined || (flags & ~knownFlags) !== 0) {
      replies.error(cookie, nbd.EINVAL, 'unknown command or flag');
      return;
    }
    if (type === nbd.CMD_FLUSH) {
      this.run(origin, request, () => this.volume.flush());
      return;
    }
    const writes = type === nbd.CMD_WRITE || type === nbd.CMD_WRITE_ZEROES || type === nbd.CMD_TRIM;
    if (offset + BigInt(length) > BigInt(this.volume.sizeBytes)) {
      replies.error(cookie, writes && type !== nbd.CMD_TRIM ? nbd.ENOSPC : nbd.EINVAL, 'past the end');
      return;
    }
    const start = Number(offset);
    if (type === nbd.CMD_READ || type === nbd.CMD_WRITE) {
      if (length > this.options.payloadMax) {
        replies.error(cookie, nbd.EINVAL, 'over the payload limit');
        return;
      }
    }
    this.run(origin, request, () => {
      if (type === nbd.CMD_READ) {
        replies.read(cookie, start, this.volume.read(start, length));
        return;
      }
      if (type === nbd.CMD_BLOCK_STATUS) {
        replies.blockStatus(cookie, blockStatusExtents(this.volume, origin.session, start, length, flags));
        return;
      }
      if (type === nbd.CMD_WRITE) {
        this.volume.writeMany([{ offset: start, bytes: request.payload! }]);
      } else {
        // TRIM and WRITE_ZEROES: writes of zeros, in chunks.
        const zeros = new Uint8Array(Math.min(length, zeroChunk));
        for (let done = 0; done < length; done += zeros.length) {
          const part = Math.min(zeros.length, length - done);
          this.volume.writeMany([{ offset: start + done, bytes: zeros.subarray(0, part) }]);
        }
      }
      if ((flags & nbd.CMD_FLAG_FUA) !== 0) this.volume.flush();
      replies.done(cookie);
    });
  }

  private run(origin: RequestOrigin, request: Request, body: () => void): void {
    try {
      body();
      if (request.type === nbd.CMD_FLUSH) origin.replies.done(request.cookie);
    } catch (error) {
      const detail = error instanceof CowmapError ? `${error.code}: ${error.message}` : String(error);
      const name = nbd.commandNames[request.type];
      this.options.log(`nbd: ${name} at ${request.offset}, length ${request.length} failed: ${detail}`);
      const errno = error instanceof CowmapError && error.code !== 'E_IO' ? nbd.EINVAL : nbd.EIO;
      origin.replies.error(request.cookie, errno, detail);
    }
  }
}
