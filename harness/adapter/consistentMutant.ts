// A broken variant of the reference implementation's consistent secondary, for the
// conformance level consistent (docs/conformance.md): its consistent image is the
// secondary as transfers leave it, as if a receiver applied every transfer straight
// to D with no journal. Each transfer then shows in D before its cycle completes,
// which INV-DR forbids (docs/protocol.md section 10). Run as a program it serves
// the adapter protocol with it, like `cowmap adapter --mutant NAME` does with the
// mutants of harness/mutants/ (its table may take this one too).

import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { serveAdapter } from './serveAdapter.ts';

export const consistentMutantName = 'consistent-without-journal';

export class ConsistentWithoutJournal extends ReplicatedVolume {
  /** D read from the latest image: a transfer lands in D at once. */
  override readConsistent(region: number): Uint8Array {
    super.readConsistent(region);
    return this.readRegion(region, 'secondary');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await serveAdapter({
    volumeClass: ConsistentWithoutJournal,
    name: `cowmap-reference+mutant:${consistentMutantName}`,
  });
}
