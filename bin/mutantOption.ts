// `--mutant NAME` and `--only NAME,...`: the mutant of that name, or a usage error
// that lists the known ones (harness/mutants/mutants.ts mutantNamed is the one lookup).

import { mutantNamed } from '../harness/mutants/mutants.ts';
import type { Mutant } from '../harness/mutants/mutants.ts';
import { UsageError } from './usageError.ts';

export function mutantOption(name: string): Mutant {
  try {
    return mutantNamed(name);
  } catch (error) {
    if (error instanceof RangeError) throw new UsageError(error.message);
    throw error;
  }
}
