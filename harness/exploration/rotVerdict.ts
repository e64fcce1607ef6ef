// The verdict after rot: the volume reported E_CORRUPT on the way ('detected'),
// or it ran its cycles to the end with the secondary equal to the primary
// ('healed'), and the first cycle after the flip sent the point in time the model
// says. Anything else (another refusal, an error, S other than P) is a failure.

import { isCowmapError } from '../../impl/errors.ts';
import type { ModelState } from '../../model/types.ts';
import { OracleFailure } from '../oracle/oracle.ts';
import type { ExplorationSut } from '../sut/explorationSut.ts';
import type { Explorer } from './explorer.ts';

/** What a region of S may hold after the next cycle: as it was, or the point in time. */
export interface PointInTime {
  readonly before: readonly string[];
  readonly view: readonly string[];
}

/**
 * What the next cycle may send, with no write in between, as the model says:
 * running, the view of each region (W's copy, else P); idle, P (the swap makes
 * X the new C, W empty). A region may also stay as it was: a rotted map page kept
 * on the evidence that W or X covers a lost bit defers the region to a later
 * cycle (docs/format.md, "Recovery"), which still ends with S = P. Digests, as
 * state() reports them.
 */
export function pointInTimeAfterCycle(model: ModelState): PointInTime {
  const view = model.primary.map((content, region) =>
    model.phase === 'replicating' ? (model.cow[region] ?? content) : content,
  );
  return { before: model.secondary, view };
}

/**
 * After rot: (re)opens when asked, runs two cycles, restarts, runs a third, and
 * checks S = P. 'detected' when the volume said E_CORRUPT on the way; any other
 * refusal, an error, or S differing from P at the end is a failure (thrown).
 */
export async function runToTheEnd(
  explorer: Explorer,
  reopen: boolean,
  label: string,
  pointInTime: PointInTime | null,
): Promise<'detected' | 'healed'> {
  const sut = explorer.sut;
  const reopenNow = async (): Promise<boolean> => {
    const reply = await sut.recover();
    if (reply.ok) return true;
    if (reply.code === 'E_CORRUPT') return false;
    throw new OracleFailure(
      'sut',
      `${label}: open says ${reply.code}: ${reply.message}; after rot only E_CORRUPT may refuse`,
    );
  };
  try {
    if (reopen && !(await reopenNow())) return 'detected';
    cycle(sut);
    if (pointInTime !== null) {
      // Every region the first cycle after the flip sent holds the point in time
      // the model says: a volume that did not say E_CORRUPT must not have repaired
      // silently (a rotted COW copy taken for a torn one sends P's new data instead).
      const secondary = sut.openVolume.state().secondary;
      const differing = secondary.flatMap((digest, region) =>
        digest === pointInTime.before[region] || digest === pointInTime.view[region] ? [] : [region],
      );
      if (differing.length > 0) {
        throw new OracleFailure(
          'sut',
          `${label}: the volume never reported E_CORRUPT, and the cycle after the flip left S other than the ` +
            `point in time at region(s) ${differing.join(', ')}`,
        );
      }
    }
    cycle(sut);
    await sut.crash();
    if (!(await reopenNow())) return 'detected';
    cycle(sut);
    const state = sut.openVolume.state();
    const differing = state.primary.flatMap((digest, region) => (digest === state.secondary[region] ? [] : [region]));
    if (differing.length > 0) {
      throw new OracleFailure(
        'sut',
        `${label}: the volume never reported E_CORRUPT, and after three cycles S differs from P at region(s) ${differing.join(', ')}`,
      );
    }
    return 'healed';
  } catch (error) {
    if (isCowmapError(error) && error.code === 'E_CORRUPT') return 'detected';
    if (isCowmapError(error))
      throw new OracleFailure('sut', `${label}: ${error.code} where only E_CORRUPT may refuse: ${error.message}`);
    throw error;
  }
}

/** One cycle on the open volume, called directly: startCycle when idle, a transfer of each region of C, completeCycle. */
function cycle(sut: ExplorationSut): void {
  const volume = sut.openVolume;
  if (volume.state().phase === 'idle') volume.startCycle();
  const current = volume.state().current;
  for (let region = 0; region < current.length; region++) if (current[region] === '1') volume.transfer(region);
  volume.completeCycle();
}
