// Test support: an NBD export in memory behind the RemoteLink interface, so that the
// remote replica's logic (the wire sequence, retries, the checks at connect,
// staleness) is tested without sockets or workers. The export keeps what a server
// holds: `bytes` as written, `durable` as of the last FLUSH; `restart()` loses what no
// FLUSH covered. Faults are armed by count and fire on the next calls. Every request
// is logged, so that tests can check the order of the wire sequence.

import { LinkFault, type RemoteExportInfo, type RemoteLink, type RemoteWrite } from './remoteLink.ts';

export interface MemoryFaults {
  /** The next N connects are refused. */
  refuseConnects: number;
  /** The next N FLUSHes fail with an EIO reply. */
  failFlushes: number;
  /** The next N writeBatch calls fail with an EIO reply after applying their first write. */
  failWriteBatches: number;
  /** The next N requests find the connection dead (a server that restarted while the link was idle). */
  deadRequests: number;
}

export class MemoryExport {
  bytes: Uint8Array;
  durable: Uint8Array;
  readonly faults: MemoryFaults = { refuseConnects: 0, failFlushes: 0, failWriteBatches: 0, deadRequests: 0 };
  /** The requests as the server saw them: "connect", "write OFFSET LENGTH", "zeroes ...", "flush", "read ...". */
  readonly log: string[] = [];
  payloadMax = 1 << 20;
  /** What the handshake says: a read-only export (the link refuses no write itself: the replica must not send one). */
  readOnly = false;
  /** What the handshake says of FLUSH and of the minimum block size. */
  canFlush = true;
  blockSizeMin = 1;
  /** Bumped by dropConnections: a link connected before sees its connection gone. */
  epoch = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.durable = new Uint8Array(size);
  }

  /** The server restarted: what no FLUSH covered is gone. */
  restart(): void {
    this.bytes = this.durable.slice();
  }

  /** The export replaced by an older copy (taken with `snapshot`). */
  replaceWith(copy: Uint8Array): void {
    this.bytes = copy.slice();
    this.durable = copy.slice();
  }

  /** The server cut every connection (a restart, a network fault). */
  dropConnections(): void {
    this.epoch++;
  }

  snapshot(): Uint8Array {
    return this.durable.slice();
  }
}

export class MemoryLink implements RemoteLink {
  private isConnected = false;
  private epoch = -1;

  constructor(private readonly target: MemoryExport) {}

  get connected(): boolean {
    return this.isConnected && this.epoch === this.target.epoch;
  }

  connect(): RemoteExportInfo {
    this.isConnected = false;
    this.target.log.push('connect');
    if (this.target.faults.refuseConnects > 0) {
      this.target.faults.refuseConnects--;
      throw new LinkFault('link', 'connect: ECONNREFUSED');
    }
    this.isConnected = true;
    this.epoch = this.target.epoch;
    return {
      exportSize: this.target.bytes.length,
      readOnly: this.target.readOnly,
      canFlush: this.target.canFlush,
      payloadMax: this.target.payloadMax,
      blockSizeMin: this.target.blockSizeMin,
    };
  }

  read(offset: number, length: number): Uint8Array {
    this.check('read');
    this.target.log.push(`read ${offset} ${length}`);
    return this.target.bytes.slice(offset, offset + length);
  }

  writeBatch(writes: readonly RemoteWrite[]): void {
    this.check('write');
    // A real server may apply writes in flight together in any order: overlapping ones are a bug of the caller.
    const sorted = [...writes].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) {
      const previous = sorted[i - 1]!;
      if (previous.offset + previous.bytes.length > sorted[i]!.offset)
        throw new Error(`overlapping writes in flight together at ${sorted[i]!.offset}`);
    }
    for (const [index, write] of writes.entries()) {
      if (index === 1 && this.target.faults.failWriteBatches > 0) {
        this.target.faults.failWriteBatches--;
        this.fail('reply', 'WRITE: EIO reply');
      }
      this.target.log.push(`write ${write.offset} ${write.bytes.length}`);
      this.target.bytes.set(write.bytes, write.offset);
    }
  }

  writeZeroes(offset: number, length: number): void {
    this.check('zeroes');
    this.target.log.push(`zeroes ${offset} ${length}`);
    this.target.bytes.fill(0, offset, offset + length);
  }

  flush(): void {
    this.check('flush');
    this.target.log.push('flush');
    if (this.target.faults.failFlushes > 0) {
      this.target.faults.failFlushes--;
      this.fail('reply', 'FLUSH: EIO reply');
    }
    this.target.durable = this.target.bytes.slice();
  }

  disconnect(): void {
    this.isConnected = false;
  }

  close(): void {
    this.isConnected = false;
  }

  private check(op: string): void {
    if (!this.connected) this.fail('link', `${op}: the connection was dropped`);
    if (this.target.faults.deadRequests > 0) {
      this.target.faults.deadRequests--;
      this.fail('link', `${op}: the server closed the connection`);
    }
  }

  private fail(kind: 'link' | 'reply', message: string): never {
    this.isConnected = false;
    throw new LinkFault(kind, message);
  }
}

/** A link factory over one export, for NbdReplica's options. */
export function memoryLinkFactory(target: MemoryExport): () => RemoteLink {
  return () => new MemoryLink(target);
}
