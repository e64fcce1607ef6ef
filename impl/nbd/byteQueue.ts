// The bytes a connection has received and not yet parsed.

/** A FIFO of received chunks that hands out exact byte counts, copying only the bytes asked for. */
export class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /**
   * The first `count` bytes, without consuming them (count <= length). Only the
   * chunks that hold them are joined: joining the whole queue for a 28-byte header
   * behind a deep pipeline of writes made framing quadratic.
   */
  peek(count: number): Buffer {
    if (count === 0) return Buffer.alloc(0);
    if (count > this.length) throw new Error(`peek of ${count} bytes with ${this.length} queued`);
    const head = this.chunks[0]!;
    if (head.length >= count) return head.subarray(0, count);
    let joinedCount = 0;
    let used = 0;
    while (used < count) used += this.chunks[joinedCount++]!.length;
    const joined = Buffer.concat(this.chunks.slice(0, joinedCount), used);
    this.chunks.splice(0, joinedCount, joined);
    return joined.subarray(0, count);
  }

  /** The first `count` bytes, consumed, in a buffer of their own (the chunks they came in are not retained). */
  take(count: number): Buffer {
    if (count > this.length) throw new Error(`take of ${count} bytes with ${this.length} queued`);
    const bytes = Buffer.allocUnsafe(count);
    let copied = 0;
    while (copied < count) {
      const head = this.chunks[0]!;
      const part = Math.min(head.length, count - copied);
      head.copy(bytes, copied, 0, part);
      copied += part;
      if (part === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(part);
    }
    this.length -= count;
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
