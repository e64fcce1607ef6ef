// Mutants that break a rule of the maps, the copy-on-write or the cycle in
// every run (no crash needed to see them, except a recovery's own rule): the
// generic nets (fuzz, crashes) and conform each catch them.

import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';

export class NoCopyOnWrite extends ReplicatedVolume {
  protected override preserveRegion(): void {}
}

export class CopyOnWriteOnlyInCurrent extends ReplicatedVolume {
  protected override needsPreserve(region: number): boolean {
    return super.needsPreserve(region) && this.currentMap.has(region);
  }
}

export class SecondWriteRepreserves extends ReplicatedVolume {
  protected override needsPreserve(): boolean {
    return this.phase === 'replicating';
  }
}

export class NoNextBitDuringCycle extends ReplicatedVolume {
  protected override markNext(region: number): void {
    if (this.phase === 'idle') super.markNext(region);
  }
}

export class SwapKeepsNext extends ReplicatedVolume {
  protected override swapMaps(): void {
    super.swapMaps();
    for (const region of this.currentMap.bits.regionsSet()) this.nextMap.set(region);
  }
}

export class TransferSendsPrimary extends ReplicatedVolume {
  protected override snapshotView(region: number): Uint8Array {
    return this.primary.readRegion(region);
  }
}

export class CompletesEarly extends ReplicatedVolume {
  protected override isDrained(): boolean {
    return true;
  }
}

export class RecoveryDropsCycle extends ReplicatedVolume {
  protected override recover(): void {
    if (this.phase === 'replicating') this.clearCurrent();
    super.recover();
  }
}
