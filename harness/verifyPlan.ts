// The stages `cowmap verify` runs, in order, for the full job and for the quick
// budget that `make test` runs.

import { fileURLToPath } from 'node:url';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import type { VolumeClass } from './types.ts';
import { crashStage, fuzzStage, pathStage, traceStage } from './verify.ts';
import type { Stage } from './verify.ts';

export interface PlanOptions {
  readonly quick: boolean;
  readonly mutantName?: string | undefined;
  readonly volumeClass?: VolumeClass | undefined;
}

export const fig4TraceFile = fileURLToPath(new URL('../traces/fig4.jsonl', import.meta.url));

export function standardStages(options: PlanOptions): Stage[] {
  const mutantArgs = options.mutantName === undefined ? [] : ['--mutant', options.mutantName];
  return [
    traceStage('FIG. 4 trace', () => [fig4TraceFile]),
    traceStage('traces/', (context) => context.traceFiles.filter((file) => !file.endsWith('/fig4.jsonl'))),
    pathStage({ regions: 2, values: options.quick ? 1 : 2, crash: true, regionSize: 512 }, options.quick ? 20 : 200),
    fuzzStage({ regions: options.quick ? 2 : 3, labels: 2, commandsMax: options.quick ? 30 : 50, mutantArgs }),
    crashStage({
      length: options.quick ? 3 : 4,
      regions: 2,
      values: 2,
      volumeClass: options.volumeClass ?? ReplicatedVolume,
      volumeName: options.mutantName === undefined ? 'the reference implementation' : `mutant ${options.mutantName}`,
    }),
  ];
}
