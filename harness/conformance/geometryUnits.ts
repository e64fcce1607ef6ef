// What the generated checks share: each geometry of a run is a unit with an
// equal share of what its check has left, and a folder for its failures.

import { join } from 'node:path';
import type { Geometry } from '../../model/types.ts';
import { Deadline, share } from './budget.ts';
import type { CheckContext } from './context.ts';
import type { CheckSpec } from './plan.ts';
import { fileSafe } from '../fileSafe.ts';

/** A geometry's deadline: an equal share of what the check has left, no later than the check's own. */
export function geometryDeadline(check: Deadline, geometriesLeft: number): Deadline {
  const now = performance.now();
  return new Deadline(Math.min(check.atMs, now + share(check.remainingMs(), 1, geometriesLeft)));
}

export function geometryDir(context: CheckContext, spec: CheckSpec, geometry: Geometry): string {
  return join(context.failuresDir, `conform-${fileSafe(spec.id)}-${geometry.regions}x${geometry.regionSize}`);
}
