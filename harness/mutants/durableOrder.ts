// Mutants that put durable steps in the wrong order: each run ends right, and
// only a crash or a power loss between the steps exposes them, so only the crash
// checks catch them (which is the point of having them).

import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';

export class NextBitAfterData extends ReplicatedVolume {
  protected override applyWrite(region: number, data: Uint8Array): void {
    if (this.needsPreserve(region)) this.preserveRegion(region);
    this.writePrimary(region, data);
    this.markNext(region);
  }
}

export class CopyAfterOverwrite extends ReplicatedVolume {
  protected override applyWrite(region: number, data: Uint8Array): void {
    const preserve = this.needsPreserve(region);
    const old = this.primary.readRegion(region);
    this.markNext(region);
    this.writePrimary(region, data);
    if (preserve) this.cow.preserve(region, old, this.metadata.record.cycle);
  }
}

export class SwapInTwoSteps extends ReplicatedVolume {
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

export class CompletesBeforeNextDurable extends ReplicatedVolume {
  protected override persistNext(): void {}

  // The deferred bits outlive the completion here; flushing them at the swap keeps
  // the variant running (the real swap asserts there are none) so that only a
  // power loss in between shows the bug.
  protected override swapMaps(): void {
    this.nextMap.flush();
    super.swapMaps();
  }
}

export class RecoveryForgetsNext extends ReplicatedVolume {
  protected override rebuildNext(): void {}
}

// Recovery reads what a killed process left in the page cache and builds on it
// as if durable: only a power loss after a kill and a recovery shows it.
export class RecoveryTrustsPageCache extends ReplicatedVolume {
  protected static override readonly syncFilesAtOpen: boolean = false;
}

export class AcknowledgedBeforeDurable extends ReplicatedVolume {
  protected override writePrimary(region: number, data: Uint8Array): void {
    this.primary.writeRegion(region, data);
  }
}
