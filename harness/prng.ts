// A tiny seeded pseudo-random generator (SplitMix32 over a 64-bit seed folded to
// two 32-bit words), for the crash layer and the explorers: the same seed gives
// the same stream on every run and every platform, which is all we need. It is
// not a cryptographic generator and must not be used as one.

/** Folds any finite number (integer seeds up to 2^53 keep all their bits) to a 32-bit state. */
export function seedState(seed: number): number {
  if (!Number.isFinite(seed)) throw new RangeError(`prng: seed must be a finite number, got ${seed}`);
  const whole = Math.trunc(Math.abs(seed));
  const low = whole >>> 0;
  const high = Math.floor(whole / 0x1_0000_0000) >>> 0;
  // Mix the high word in so that seeds differing only above bit 31 differ;
  // the sign goes in too, so that -1 and 1 differ.
  let state = low ^ Math.imul(high ^ 0x9e3779b9, 0x85ebca6b);
  if (seed < 0) state ^= 0x7f4a7c15;
  return state >>> 0;
}

export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seedState(seed);
  }

  /** The next value in [0, 2^32). */
  nextUint32(): number {
    // SplitMix32: add the golden-ratio increment, then a finalizer with good
    // avalanche, so that consecutive seeds give unrelated streams.
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** A fair coin. */
  nextBool(): boolean {
    return (this.nextUint32() & 1) === 1;
  }

  /** A value in [0, bound); bound an integer in [1, 2^32]. Rejection sampling, so no bias. */
  nextInt(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > 0x1_0000_0000) {
      throw new RangeError(`prng: bound must be an integer in [1, 2^32], got ${bound}`);
    }
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % bound);
    // Each draw is accepted with probability > 1/2, so 64 rejections in a row
    // happen with probability < 2^-64; the bound only keeps the loop finite.
    const drawCountMax = 64;
    for (let draw = 0; draw < drawCountMax; draw++) {
      const value = this.nextUint32();
      if (value < limit) return value % bound;
    }
    return this.nextUint32() % bound;
  }
}
