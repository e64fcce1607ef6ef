// Seeded bytes for the benchmarks' data: the same seed gives the same bytes on
// every run, fast enough to fill a 1 GiB image.

import { createCipheriv, createHash } from 'node:crypto';

/**
 * A seeded stream of pseudo-random bytes: AES-128-CTR over zeros, with the key made
 * from the seed. Fast (GB/s), and the same seed gives the same bytes on every run.
 */
export class SeededBytes {
  private readonly cipher;

  constructor(seed: number) {
    const key = createHash('sha256').update(`cowmap-bench-${seed}`).digest().subarray(0, 16);
    this.cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  }

  next(length: number): Uint8Array {
    const bytes = this.cipher.update(Buffer.alloc(length));
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}
