// Named broken variants of the reference implementation, for the mutation
// self-check: each is the real volume with ONE step overridden, the way a real
// implementation goes wrong. The suite must catch every one (`make mutants`).
//
// Some break a rule in every run (no copy-on-write); others only break what a
// crash or a power loss exposes (the COW copy written after the overwrite, a
// write acknowledged before it is durable): those are caught only by the crash
// checks, which is the point of having them.

import { ReplicatedVolume } from '../impl/replicatedVolume.ts';

export interface Mutant {
  readonly volumeClass: typeof ReplicatedVolume;
  readonly description: string;
}

class NoCopyOnWrite extends ReplicatedVolume {
  protected override preserveRegion(): void {}
}

class CopyOnWriteOnlyInCurrent extends ReplicatedVolume {
  protected override needsPreserve(region: number): boolean {
    return super.needsPreserve(region) && this.currentMap.has(region);
  }
}

class SecondWriteRepreserves extends ReplicatedVolume {
  protected override needsPreserve(): boolean {
    return this.phase === 'replicating';
  }
}

class NoNextBitDuringCycle extends ReplicatedVolume {
  protected override markNext(region: number): void {
    if (this.phase === 'idle') super.markNext(region);
  }
}

class SwapKeepsNext extends ReplicatedVolume {
  protected override swapMaps(): void {
    super.swapMaps();
    for (const region of this.currentMap.bits.regionsSet()) this.nextMap.set(region);
  }
}

class TransferSendsPrimary extends ReplicatedVolume {
  protected override snapshotView(region: number): Uint8Array {
    return this.primary.readRegion(region);
  }
}

class CompletesEarly extends ReplicatedVolume {
  protected override isDrained(): boolean {
    return true;
  }
}

class RecoveryDropsCycle extends ReplicatedVolume {
  protected override recover(): void {
    if (this.phase === 'replicating') this.clearCurrent();
    super.recover();
  }
}

class NextBitAfterData extends ReplicatedVolume {
  protected override applyWrite(region: number, data: Uint8Array): void {
    if (this.needsPreserve(region)) this.preserveRegion(region);
    this.writePrimary(region, data);
    this.markNext(region);
  }
}

class CopyAfterOverwrite extends ReplicatedVolume {
  protected override applyWrite(region: number, data: Uint8Array): void {
    const preserve = this.needsPreserve(region);
    const old = this.primary.readRegion(region);
    this.markNext(region);
    this.writePrimary(region, data);
    if (preserve) this.cow.preserve(region, old, this.metadata.record.cycle);
  }
}

class SwapInTwoSteps extends ReplicatedVolume {
  protected override swapMaps(): void {
    const record = this.metadata.record;
    // Step one flips the map roles (and the cycle number, which names the current
    // map); step two sets the phase. A crash between leaves an idle volume whose
    // current map holds the old next bits, which recovery clears.
    this.metadata.update({ cycle: record.cycle + 1, currentMap: record.currentMap === 0 ? 1 : 0 });
    this.metadata.update({ phase: 'replicating' });
    this.cow.forget();
    this.sent.clearAll();
  }
}

class CompletesBeforeNextDurable extends ReplicatedVolume {
  protected override persistNext(): void {}

  // The deferred bits outlive the completion here; flushing them at the swap keeps
  // the variant running (the real swap asserts there are none) so that only a
  // power loss in between shows the bug.
  protected override swapMaps(): void {
    this.nextMap.flush();
    super.swapMaps();
  }
}

class RecoveryForgetsNext extends ReplicatedVolume {
  protected override rebuildNext(): void {}
}

// Recovery reads what a killed process left in the page cache and builds on it
// as if durable: only a power loss after a kill and a recovery shows it.
class RecoveryTrustsPageCache extends ReplicatedVolume {
  protected static override readonly syncFilesAtOpen: boolean = false;
}

class AcknowledgedBeforeDurable extends ReplicatedVolume {
  protected override writePrimary(region: number, data: Uint8Array): void {
    this.primary.writeRegion(region, data);
  }
}

export const mutants: Readonly<Record<string, Mutant>> = {
  'no-cow': { volumeClass: NoCopyOnWrite, description: 'no copy-on-write' },
  'cow-only-current': { volumeClass: CopyOnWriteOnlyInCurrent, description: 'copy-on-write only for regions in the current map' },
  'second-write-represerves': { volumeClass: SecondWriteRepreserves, description: 'a second write in a cycle re-preserves' },
  'no-next-bit-in-cycle': { volumeClass: NoNextBitDuringCycle, description: 'the next bit not set during a cycle' },
  'swap-keeps-next': { volumeClass: SwapKeepsNext, description: 'a swap that keeps the next map' },
  'transfer-sends-primary': { volumeClass: TransferSendsPrimary, description: 'a transfer that sends the primary instead of the snapshot view' },
  'complete-early': { volumeClass: CompletesEarly, description: 'completion before every region is sent' },
  'recovery-drops-cycle': { volumeClass: RecoveryDropsCycle, description: 'recovery that drops a running cycle' },
  // During a cycle the bit rides on the COW entry either way: only idle writes expose it.
  'next-bit-after-data': { volumeClass: NextBitAfterData, description: 'the next bit made durable after the data (idle writes)' },
  'cow-after-overwrite': { volumeClass: CopyAfterOverwrite, description: 'the COW copy written after the overwrite' },
  'swap-two-steps': { volumeClass: SwapInTwoSteps, description: 'a swap done in two durable steps' },
  'complete-before-next-durable': {
    volumeClass: CompletesBeforeNextDurable,
    description: 'completion before the next bits set in the cycle are durable in the map',
  },
  'recovery-forgets-next': { volumeClass: RecoveryForgetsNext, description: 'recovery that does not rebuild the next bits from the COW index' },
  'recovery-trusts-page-cache': { volumeClass: RecoveryTrustsPageCache, description: 'recovery that reads the page cache as durable (no sync at open)' },
  'ack-before-durable': { volumeClass: AcknowledgedBeforeDurable, description: 'a write acknowledged before it is durable' },
};

export function mutantNamed(name: string): Mutant {
  const mutant = mutants[name];
  if (mutant === undefined) throw new RangeError(`no mutant named '${name}' (known: ${Object.keys(mutants).join(', ')})`);
  return mutant;
}
