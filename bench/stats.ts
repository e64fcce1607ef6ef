// Order statistics for the benchmark figures: every figure is a median over
// repeated runs, with its spread (min..max and the interquartile range).

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** First and third quartiles (linear interpolation between order statistics). */
  readonly q1: number;
  readonly q3: number;
  readonly count: number;
}

/** The value at fraction `p` (0..1) of the sorted values, interpolated linearly. */
function quantile(sorted: readonly number[], p: number): number {
  const position = (sorted.length - 1) * p;
  const below = Math.floor(position);
  const above = Math.ceil(position);
  const low = sorted[below]!;
  const high = sorted[above]!;
  return low + (high - low) * (position - below);
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new RangeError('summarize: no values');
  for (const value of values) if (!Number.isFinite(value)) throw new RangeError(`summarize: ${value} is not finite`);
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: quantile(sorted, 0.5),
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    q1: quantile(sorted, 0.25),
    q3: quantile(sorted, 0.75),
    count: sorted.length,
  };
}

/** Per-repetition ratios a[i] / b[i] of two interleaved series of the same length. */
export function ratios(numerators: readonly number[], denominators: readonly number[]): number[] {
  if (numerators.length !== denominators.length) throw new RangeError('ratios: series of different lengths');
  return numerators.map((value, index) => value / denominators[index]!);
}

/** Seconds since `started` (a reading of process.hrtime.bigint(), the monotonic clock). */
export function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** Elapsed seconds of a synchronous body, by the monotonic clock. */
export function timeSeconds(body: () => void): number {
  const started = process.hrtime.bigint();
  body();
  return secondsSince(started);
}
