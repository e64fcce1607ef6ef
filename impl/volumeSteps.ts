// The steps of the protocol that the reference volume runs (docs/format.md gives
// their durable order), and recovery. Each is a small protected method named after
// it, so that a broken variant (a "mutant" of the conformance harness) is one
// override (the static rules at the end of the table are VolumeCore's):
//
//   mutant                                        override
//   no copy-on-write                              preserveRegion (do nothing)
//   copy-on-write only for regions in C           needsPreserve
//   a second write in a cycle re-preserves        needsPreserve
//   the next bit not set during a cycle           markNext
//   a swap that keeps the next map                swapMaps
//   a transfer that sends P instead of the view   snapshotView
//   completion before every region is sent        isDrained
//   recovery that drops a running cycle           recover
//   the next bit made durable after the data      applyWrite (step order)
//   completion before the deferred next bits are  persistNext (no sync)
//     durable
//   recovery that does not rebuild the next bits  rebuildNext (do nothing)
//     from the COW index
//   the COW copy written after the overwrite      applyWrite (step order)
//   a swap done in two durable steps              swapMaps
//   a write acknowledged before it is durable     writePrimary (no sync)
//   the view sent as P for regions 8 and up       snapshotView
//   a write of the first sector only              writePrimary
//   a transfer up to the first zero byte          snapshotView
//   next bits kept for regions 0..7 only          markNext
//   no copy-on-write after 50 operations          applyWrite, needsPreserve, ...
//   the third swap since open keeps a next bit    swapMaps
//   a transfer in two synced halves               sendRegions
//   create of an unaligned region size            geometryProblem (static)
//   create over an existing volume                refusesExistingVolume (static)
//   open of a volume another process holds        honoursLock (static)
//   recovery that ignores digests (a rotted COW   isTornPreserve (always true)
//     copy taken for a torn preserve)
//

import { assert } from './assert.ts';
import { bytesEqual, sha256 } from './checksum.ts';
import {
  checkDamagedEntries,
  checkMapPages,
  checkMetadataEvidence,
  type OpenRepairs,
  type RecoveryFiles,
} from './recoveryChecks.ts';

import { VolumeCore } from './volumeCore.ts';

export class VolumeSteps extends VolumeCore {
  /** Set only by scrubDir with repair, for the recovery of that open (see RecoveryRepair). */
  protected openRepairs: OpenRepairs | null = null;

  // ------------------------------------------------- the steps (overridable)

  /** The durable order of a write (docs/protocol.md section 5; docs/format.md, "write"). */
  protected applyWrite(region: number, data: Uint8Array): void {
    // The COW copy is durable before the primary region is overwritten: a crash
    // after the overwrite must still find P@swap[region] in W.
    if (this.needsPreserve(region)) this.preserveRegion(region);
    // The next bit is durable before the data write, in the map or through W's
    // entry: new data in P with X clear would never reach S (INV-COVER).
    this.markNext(region);
    // Acknowledged only once durable: writePrimary syncs before returning.
    this.writePrimary(region, data);
  }

  /** Copy-on-write for every region written while replicating, once per cycle (FIG. 4B T3). */
  protected needsPreserve(region: number): boolean {
    return this.phase === 'replicating' && !this.cow.holds(region);
  }

  /** W[region] := P[region], durable when this returns (data slot, index entry, one sync). */
  protected preserveRegion(region: number): void {
    this.cow.preserve(region, this.primary.readRegion(region), this.metadata.record.cycle);
  }

  /** preserveRegion of each region with ONE sync of the COW file for the lot (writeMany's group commit). */
  protected preserveRegions(regions: readonly number[]): void {
    const cycle = this.metadata.record.cycle;
    this.cow.preserveMany(regions, (region) => this.primary.readRegion(region), cycle);
  }

  /** markNext of each region, with ONE sync of the map for the bits set while idle (writeMany's group commit). */
  protected markNextMany(regions: readonly number[]): void {
    if (this.phase === 'idle') {
      this.nextMap.setMany(regions);
      return;
    }
    for (const region of regions) this.markNext(region);
  }

  /**
   * X[region] := 1, durable when this returns; no I/O when the bit is already set.
   * While replicating, every written region holds a COW copy for the cycle (FIG. 4B
   * T3), and its durable entry already says "written this cycle": recovery
   * rebuilds X from the entries (rebuildNext). So the bit is set in memory only,
   * and completion writes and syncs the map bytes before the entries go stale
   * (persistNext). That saves a write and an fdatasync on every first write in a
   * cycle. While idle there is no entry: the bit's byte is written and synced here.
   */
  protected markNext(region: number): void {
    if (this.phase === 'replicating' && this.cow.holds(region)) {
      this.nextMap.setDeferred(region);
    } else {
      this.nextMap.set(region);
    }
  }

  /** P[region] := data: pwrite, then fdatasync before the write is acknowledged. */
  protected writePrimary(region: number, data: Uint8Array): void {
    this.primary.writeRegion(region, data);
    this.primary.sync();
  }

  /**
   * The swap as ONE durable step: one metadata update flips the roles of the two map
   * files, bumps the cycle number (which empties W: every COW entry names an older
   * cycle) and sets the phase. O(1) I/O: no map is copied or rewritten. The file
   * that becomes X is the old C, all clear since completion or recovery.
   */
  protected swapMaps(): void {
    const record = this.metadata.record;
    assert(this.currentMap.isClear(), 'the map that becomes next at the swap is not clear');
    // Idle writes sync their bits, and completion made the deferred ones durable.
    assert(!this.nextMap.hasDeferred, 'next bits still deferred at the swap');
    this.metadata.update({
      phase: 'replicating',
      cycle: record.cycle + 1,
      currentMap: record.currentMap === 0 ? 1 : 0,
    });
    this.cow.forget();
    this.sent.clearAll();
  }

  /** view(region) = W[region] if it holds a copy, else P[region]. */
  protected snapshotView(region: number): Uint8Array {
    return this.cow.holds(region) ? this.cow.read(region) : this.primary.readRegion(region);
  }

  /** S[r] := view(r) for each region; the replica makes them all durable with one sync. */
  protected sendRegions(regions: readonly number[]): void {
    this.replica.writeRegions(regions, (region) => this.snapshotView(region));
  }

  /** Every region of C was sent since the swap or since the last open. */
  protected isDrained(): boolean {
    return this.currentMap.bits.regionsSet().every((region) => this.sent.has(region));
  }

  /**
   * Completion. The durable step that completes the cycle is ONE metadata update
   * (phase idle); from then on the current map file is ignored and W is empty.
   * Only after it are C's bytes zeroed and synced, so that the map is clear before
   * the next swap makes it X; a crash in between leaves them set, and recovery
   * finishes the clearing.
   */
  protected clearCurrent(): void {
    this.persistNext();
    this.metadata.update({ phase: 'idle' });
    this.cow.forget();
    this.sent.clearAll();
    this.currentMap.clearAll();
  }

  /**
   * The next bits set this cycle are durable only through W's entries, which go
   * stale at completion: the next map's bytes holding them are written and synced
   * first (no I/O when none was deferred).
   */
  protected persistNext(): void {
    this.nextMap.flush();
  }

  /**
   * Recovery, run by open (and create) on what is durable. First the integrity
   * checks of docs/format.md, "Recovery" (impl/recoveryChecks.ts): a damaged
   * structure is kept only with evidence that a crash tore it and nothing is lost,
   * else E_CORRUPT. Idle: finish clearing a current map that a crash after
   * completion left set (no I/O when clear). Replicating: the cycle resumes with C
   * as it is, W as the index says, X as the map says plus every region W holds a
   * copy of, and nothing sent. Read-only, all of it happens in memory only.
   */
  protected recover(): void {
    this.sent.clearAll();
    this.cow.forget();
    const files = this.recoveryFiles();
    const repairs = this.openRepairs;
    checkMetadataEvidence(files);
    if (this.phase === 'idle') {
      checkMapPages(files, false, !this.readOnly, repairs);
      if (this.readOnly) this.currentMap.clearInMemory();
      else this.currentMap.clearAll();
    } else {
      const rotted: { region: number; offset: number; problem: string }[] = [];
      const scan = this.cow.loadCycle(
        this.metadata.record.cycle,
        this.metadata.record.sequence,
        (region, digest) => this.isTornPreserve(region, digest),
        repairs === null ? null : (region, offset, problem) => rotted.push({ region, offset, problem }),
      );
      checkMapPages(files, true, !this.readOnly, repairs);
      for (const { region, offset, problem } of rotted) {
        // X first: the entry may be the only durable record of the region's next bit.
        repairs!.repair({ file: this.cow.file.path, offset, region, problem }, [region]);
        this.cow.dropCopy(region);
      }
      this.rebuildNext();
      checkDamagedEntries(files, scan.damagedEntries, repairs);
    }
  }

  /**
   * A valid COW entry of the running cycle whose slot fails its digest: a preserve
   * torn by a crash exactly when the primary still holds the digest's bytes (it is
   * overwritten only after the preserve is durable). Otherwise the copy rotted.
   */
  protected isTornPreserve(region: number, digest: Uint8Array): boolean {
    return bytesEqual(sha256(this.primary.readRegion(region)), digest);
  }

  /** The files as recovery and scrub see them; the roles of the maps are read when asked (a swap flips them). */
  protected recoveryFiles(): RecoveryFiles {
    const volume = this;
    return {
      metadata: this.metadata,
      maps: this.maps,
      get currentMap() {
        return volume.currentMap;
      },
      get nextMap() {
        return volume.nextMap;
      },
      cow: this.cow,
      primary: this.primary,
      replica: this.replica,
    };
  }

  /**
   * X[r] := 1 for every r that W holds a copy of: a copy is made only by a write in
   * this cycle, whose next bit may not have reached the map (markNext). The bits
   * are set deferred, as markNext sets them: no I/O here.
   */
  protected rebuildNext(): void {
    for (const region of this.cow.preservedRegions()) this.nextMap.setDeferred(region);
  }
}
