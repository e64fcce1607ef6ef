// The consistent image D of a volume in this process (feature `consistent`,
// docs/protocol.md section 10): where its consistent secondary lives, and the
// state with D's digests.

import { sha256Hex } from '../../impl/checksum.ts';
import type { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import type { SutState } from './systemUnderTest.ts';
import { posix } from 'node:path';

/** Where a volume's consistent secondary lives: beside its directory (feature `consistent`). */
export function consistentDirOf(dir: string): string {
  return posix.join(posix.dirname(dir), 'consistent');
}

/** The volume's state, with D's digests when it keeps a consistent image (`consistent`). */
export function withConsistent(volume: ReplicatedVolume, consistent: boolean): SutState {
  const state = volume.state();
  if (!consistent) return state;
  const digests: string[] = [];
  for (let region = 0; region < volume.regions; region++) digests.push(sha256Hex(volume.readConsistent(region)));
  return { ...state, consistent: digests };
}
