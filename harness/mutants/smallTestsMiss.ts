// Mutants that break a rule only where small tests never look: regions 8 and
// up, bytes past the first sector, content with a zero byte, long histories (50
// operations, a third cycle since open), a crash between two halves of a
// transfer. The verify stages run 2 or 3 regions with short histories, so most
// of these only conform reaches (the table names the stages in `reachedBy`).

import { sectorSize } from '../../impl/geometry.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';

/** Regions from this index up are where the geometry mutants go wrong (past the first map byte). */
const highRegionFirst = 8;
/** Accepted operations since open after which copy-on-write stops. */
const operationsBeforeNoCow = 50;
/** The cycle since open in which the swap keeps a next bit. */
const brokenCycleSinceOpen = 3;

/** Only for regions 8 and up: a geometry of 1 to 4 regions never sees it. */
export class TransferSendsPrimaryFromRegion8 extends ReplicatedVolume {
  protected override snapshotView(region: number): Uint8Array {
    return region >= highRegionFirst ? this.primary.readRegion(region) : super.snapshotView(region);
  }
}

/** A write of a region larger than a sector replaces its first sector only: the rest keeps the old bytes. */
export class WritesFirstSectorOnly extends ReplicatedVolume {
  protected override writePrimary(region: number, data: Uint8Array): void {
    if (this.regionSize <= sectorSize) {
      super.writePrimary(region, data);
      return;
    }
    const merged = this.primary.readRegion(region).slice();
    merged.set(data.subarray(0, sectorSize));
    super.writePrimary(region, merged);
  }
}

/** The transfer copies the view up to its first zero byte and zeros after it: short labels padded with zeros pass. */
export class TransferStopsAtZeroByte extends ReplicatedVolume {
  protected override snapshotView(region: number): Uint8Array {
    const view = super.snapshotView(region);
    const zeroAt = view.indexOf(0);
    if (zeroAt < 0) return view;
    const copied = new Uint8Array(view.length);
    copied.set(view.subarray(0, zeroAt));
    return copied;
  }
}

/** The next bit of regions 8 and up is never set: the map keeps only its first byte. */
export class MapKeepsFirst8Bits extends ReplicatedVolume {
  protected override markNext(region: number): void {
    if (region < highRegionFirst) super.markNext(region);
  }
}

/**
 * Copy-on-write stops after 50 accepted operations (writes, swaps, transfers,
 * completions) since open: only a long history without a reopen shows it.
 */
export class CopyOnWriteStopsAfter50Operations extends ReplicatedVolume {
  private operationsSinceOpen = 0;

  protected override applyWrite(region: number, data: Uint8Array): void {
    this.operationsSinceOpen++;
    super.applyWrite(region, data);
  }

  protected override needsPreserve(region: number): boolean {
    return this.operationsSinceOpen <= operationsBeforeNoCow && super.needsPreserve(region);
  }

  protected override swapMaps(): void {
    this.operationsSinceOpen++;
    super.swapMaps();
  }

  protected override sendRegions(regions: readonly number[]): void {
    this.operationsSinceOpen++;
    super.sendRegions(regions);
  }

  protected override clearCurrent(): void {
    this.operationsSinceOpen++;
    super.clearCurrent();
  }
}

/** The third swap since open keeps the lowest region of the new current map in the next map too. */
export class ThirdCycleKeepsNextBit extends ReplicatedVolume {
  private swapsSinceOpen = 0;

  protected override swapMaps(): void {
    super.swapMaps();
    this.swapsSinceOpen++;
    if (this.swapsSinceOpen !== brokenCycleSinceOpen) return;
    const kept = this.currentMap.bits.regionsSet()[0];
    if (kept !== undefined) this.nextMap.set(kept);
  }
}

/**
 * The transfer writes S[r] in two halves, each made durable on its own: a crash
 * between them leaves S[r] new in its first half and old in its second, which is
 * neither the old nor the new content (docs/protocol.md section 5 allows a mix
 * only in the torn model, and only sector by sector: with 512-byte regions the
 * halves split a sector, so no model allows it).
 */
export class TransferInTwoHalves extends ReplicatedVolume {
  protected override sendRegions(regions: readonly number[]): void {
    const half = Math.floor(this.regionSize / 2);
    for (const region of regions) {
      const view = this.snapshotView(region);
      const firstHalfNew = this.replica.readRegion(region).slice();
      firstHalfNew.set(view.subarray(0, half));
      this.replica.writeRegions([region], () => firstHalfNew);
      this.replica.writeRegions([region], () => view);
    }
  }
}
