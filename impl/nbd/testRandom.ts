// A small seeded generator (mulberry32) for the NBD tests' workloads: a failing
// run is repeated from the seed it prints. Test-only: nothing outside *.test.ts
// imports this file.

export interface TestRandom {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max], both included. */
  integer(min: number, max: number): number;
  /** `length` random bytes. */
  bytes(length: number): Uint8Array;
}

/** A seed from the environment variable `name` when set (to repeat a run), else a fresh one. */
export function seedFrom(name: string): number {
  const given = process.env[name];
  if (given !== undefined && given !== '') return Number(given) >>> 0;
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}

export function testRandom(seed: number): TestRandom {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const integer = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  const bytes = (length: number): Uint8Array => {
    const out = new Uint8Array(length);
    for (let index = 0; index < length; index++) out[index] = Math.floor(next() * 256);
    return out;
  };
  return { seed, next, integer, bytes };
}
