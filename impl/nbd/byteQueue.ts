// The bytes a connection has received and not yet parsed.

/** A FIFO of received chunks that hands out exact byte counts without copying everything on each chunk. */
export class ByteQueue {
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
