// What a fuzz run generates from: the geometry, the data, the crashes and the
// weights, fixed before fast-check starts (harness/fuzz/run.ts resolves them
// from the options).

import type { FaultMode } from '../types.ts';

export type FuzzData = 'labels' | 'bytes';

export interface HistoryMin {
  readonly operations: number;
  readonly cycles: number;
}

export interface Generation {
  readonly regions: number;
  readonly labels: number;
  readonly regionSize: number;
  readonly ioMax: number;
  readonly crashModes: readonly FaultMode[];
  readonly crashBetween: boolean;
  readonly data: FuzzData;
  /** Weight of the cycle command among the others (more when a history asks for many cycles). */
  readonly cycleWeight: number;
  readonly sutName: string;
}
