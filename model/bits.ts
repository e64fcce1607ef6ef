// How a map prints: its bits as a string of 0 and 1, region 0 first (FIG. 4B's
// `C = 0100`). Failures, traces and the model's tests all print maps this way.

export function bits(values: readonly boolean[]): string {
  return values.map((value) => (value ? '1' : '0')).join('');
}
