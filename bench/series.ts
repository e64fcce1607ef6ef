// The per-repetition series a section collects (seconds, counts, load averages),
// as they go into results.json: one array a name, in the order named.

/** Empty series, one a name: `emptySeries('oursSeconds', 'copySeconds')` is `{ oursSeconds: [], copySeconds: [] }`. */
export function emptySeries<const Name extends string>(...names: readonly Name[]): Record<Name, number[]> {
  return Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Name, number[]>;
}

export function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
