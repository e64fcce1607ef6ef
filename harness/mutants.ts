// Named broken variants of the reference implementation, for the mutation
// self-check: each is the real volume with ONE step overridden, the way a real
// implementation goes wrong. The suite must catch every one (`make mutants`).
//
// Some break a rule in every run (no copy-on-write); others only break what a
// crash or a power loss exposes (the COW copy written after the overwrite, a
// write acknowledged before it is durable): those are caught only by the crash
// checks, which is the point of having them.
//
// The second group (issue 11) breaks a rule only where small tests never look:
// regions 8 and up, bytes past the first sector, content with a zero byte, more
// than 8 regions, long histories (50 operations, a third cycle since open), a
// crash between two halves of a transfer. The verify stages run 2 or 3 regions
// (of 512 B, 1024 B in the crash exploration) with short histories, so most of
// these only `conform` (several geometries, full-region bytes, long runs)
// reaches: such a mutant names the stages that do in `reachedBy`.

import { sectorSize, type Geometry } from '../impl/geometry.ts';
import { encodeSlot, slotSize, type MetadataChange, type MetadataRecord } from '../impl/metadata.ts';
import { pageBitBytes, regionsPerPage } from '../impl/mapPage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import type { FileHandle, Lock, LockOptions, OpenFileOptions, Storage } from '../impl/storage.ts';
import type { CreateOptions, OpenOptions, VolumeParts } from '../impl/volumeParts.ts';

/** The stages of `cowmap mutants`: the verify stages, then conform through the adapter. */
export const mutantStageKeys = ['fig4', 'traces', 'paths', 'fuzz', 'crashes', 'crashes-wide', 'conform'] as const;
export type MutantStageKey = (typeof mutantStageKeys)[number];

export interface Mutant {
  readonly volumeClass: typeof ReplicatedVolume;
  readonly description: string;
  /**
   * The stages expected to catch it, when its class of bug is out of reach of the
   * others (small geometries, short histories, one process). Absent: every
   * generic net (fuzz, crashes) and conform must catch it on its own.
   */
  readonly reachedBy?: readonly MutantStageKey[];
}

/** Only the conformance run reaches it. */
const onlyConform: readonly MutantStageKey[] = ['conform'];

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

// ------------------------------------------------ bugs only small tests miss

/** Regions from this index up are where the geometry mutants go wrong (past the first map byte). */
const highRegionFirst = 8;
/** Accepted operations since open after which copy-on-write stops. */
const operationsBeforeNoCow = 50;
/** The cycle since open in which the swap keeps a next bit. */
const brokenCycleSinceOpen = 3;

/** Only for regions 8 and up: a geometry of 1 to 4 regions never sees it. */
class TransferSendsPrimaryFromRegion8 extends ReplicatedVolume {
  protected override snapshotView(region: number): Uint8Array {
    return region >= highRegionFirst ? this.primary.readRegion(region) : super.snapshotView(region);
  }
}

/** A write of a region larger than a sector replaces its first sector only: the rest keeps the old bytes. */
class WritesFirstSectorOnly extends ReplicatedVolume {
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
class TransferStopsAtZeroByte extends ReplicatedVolume {
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
class MapKeepsFirst8Bits extends ReplicatedVolume {
  protected override markNext(region: number): void {
    if (region < highRegionFirst) super.markNext(region);
  }
}

/**
 * Copy-on-write stops after 50 accepted operations (writes, swaps, transfers,
 * completions) since open: only a long history without a reopen shows it.
 */
class CopyOnWriteStopsAfter50Operations extends ReplicatedVolume {
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
class ThirdCycleKeepsNextBit extends ReplicatedVolume {
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
class TransferInTwoHalves extends ReplicatedVolume {
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

// ------------------------------------- issue 12: durability of names, integrity

/** A Storage whose syncDir does nothing while `skipping` is set; everything else passes through. */
class DirSyncSkipper implements Storage {
  skipping = true;
  constructor(private readonly inner: Storage) {}
  open(path: string, options: OpenFileOptions): FileHandle {
    return this.inner.open(path, options);
  }
  exists(path: string): boolean {
    return this.inner.exists(path);
  }
  mkdir(path: string): void {
    this.inner.mkdir(path);
  }
  rmdir(path: string): void {
    this.inner.rmdir(path);
  }
  syncDir(path: string): void {
    if (!this.skipping) this.inner.syncDir(path);
  }
  rename(from: string, to: string): void {
    this.inner.rename(from, to);
  }
  unlink(path: string): void {
    this.inner.unlink(path);
  }
  list(path: string): string[] {
    return this.inner.list(path);
  }
  lock(dir: string, options?: LockOptions): Lock | null {
    return this.inner.lock(dir, options);
  }
}

type Constructed<T> = new (parts: VolumeParts) => T;

/**
 * Open (and its recovery) without the syncs of DIR and the secondary's directory:
 * a create killed after renaming `meta` into place and before its directory sync
 * leaves a name that a power loss after acknowledged writes can take away.
 */
class RecoveryWithoutDirSync extends ReplicatedVolume {
  static override open<T extends ReplicatedVolume>(
    this: Constructed<T>,
    storage: Storage,
    dir: string,
    options: OpenOptions = {},
  ): T {
    const skipper = new DirSyncSkipper(storage);
    try {
      return (
        ReplicatedVolume.open as (this: Constructed<T>, storage: Storage, dir: string, options: OpenOptions) => T
      ).call(this, skipper, dir, options);
    } finally {
      skipper.skipping = false;
    }
  }
}

/** The names a volume's own files have in DIR. */
const volumeFileNames = ['meta', 'primary', 'map0', 'map1', 'cow'] as const;

/** init of a directory that holds files named like the volume's removes them first (a user's `primary` included). */
class InitOverwritesFiles extends ReplicatedVolume {
  static override create<T extends ReplicatedVolume>(
    this: Constructed<T>,
    storage: Storage,
    dir: string,
    geometry: Geometry,
    options: CreateOptions = {},
  ): T {
    for (const name of volumeFileNames) {
      const path = `${dir}/${name}`;
      if (storage.exists(path)) storage.unlink(path);
    }
    return (
      ReplicatedVolume.create as (
        this: Constructed<T>,
        storage: Storage,
        dir: string,
        geometry: Geometry,
        options: CreateOptions,
      ) => T
    ).call(this, storage, dir, geometry, options);
  }
}

/** Recovery takes every COW slot failing its digest for a torn preserve: a rotted copy is dropped silently. */
class RecoveryIgnoresDigests extends ReplicatedVolume {
  protected override isTornPreserve(): boolean {
    return true;
  }
}

/**
 * Completion writes only the first run of changed map bytes of the next map: the
 * bits of a later, separate run of bytes (regions 16..23 after a change in 0..7)
 * stay in memory only, and a restart loses them.
 */
class CompletionWritesFirstMapRun extends ReplicatedVolume {
  protected override persistNext(): void {
    const map = this.nextMap;
    const onDisk = map.file.read(0, Math.min(pageBitBytes, Math.ceil(this.regions / 8)));
    const inMemory = new Uint8Array(onDisk.length);
    for (const region of map.bits.regionsSet())
      if (region < regionsPerPage) inMemory[region >> 3]! |= 1 << (region & 7);
    // The bytes after the first run of bytes that differ from the disk: left out of this write.
    let byte = 0;
    while (byte < onDisk.length && onDisk[byte] === inMemory[byte]) byte++;
    while (byte < onDisk.length && onDisk[byte] !== inMemory[byte]) byte++;
    const left: number[] = [];
    for (const region of map.bits.regionsSet()) {
      if (region >> 3 >= byte && region < regionsPerPage && ((onDisk[region >> 3]! >> (region & 7)) & 1) === 0)
        left.push(region);
    }
    for (const region of left) map.bits.clear(region);
    try {
      super.persistNext();
    } finally {
      for (const region of left) map.bits.set(region);
    }
  }
}

/**
 * Recovery rewrites the next map by truncating it to nothing and extending it
 * again before writing its bits back and syncing: a crash in between leaves a map
 * of zeros (a valid, clear map), and the next bits are gone.
 */
class RecoveryTruncatesMap extends ReplicatedVolume {
  protected override recover(): void {
    super.recover();
    if (this.readOnly) return;
    const file = this.nextMap.file;
    const size = file.size();
    const bytes = file.read(0, size).slice();
    file.truncate(0);
    file.truncate(size);
    file.write(0, bytes);
    file.sync();
  }
}

/**
 * The metadata kept in ONE slot, updated in place (the sequence steps by 2 so
 * that it stays in its slot): a torn update leaves no valid slot at all.
 */
class MetadataUpdatedInPlace extends ReplicatedVolume {
  constructor(parts: VolumeParts) {
    super(parts);
    const store = this.metadata as unknown as {
      winner: MetadataRecord;
      file: FileHandle;
      update(change: MetadataChange): void;
    };
    store.update = (change: MetadataChange) => {
      const next: MetadataRecord = { ...store.winner, ...change, sequence: store.winner.sequence + 2 };
      store.file.write((next.sequence % 2) * slotSize, encodeSlot(next));
      store.file.sync();
      store.winner = next;
    };
  }
}

// ------------------------------------------- the adapter protocol's own rules

/** Accepts any region size from 512 bytes up, a multiple of 512 or not (E_SIZE expected); below 512 it still refuses. */
class AcceptsUnalignedRegionSize extends ReplicatedVolume {
  protected static override geometryProblem(geometry: Geometry): string | null {
    const { regions, regionSize } = geometry;
    const judged =
      Number.isSafeInteger(regionSize) && regionSize > sectorSize
        ? { regions, regionSize: Math.ceil(regionSize / sectorSize) * sectorSize }
        : geometry;
    return super.geometryProblem(judged);
  }
}

/** Create over an existing volume replaces it with a new, empty one (E_EXISTS expected). */
class CreatesOverExistingVolume extends ReplicatedVolume {
  protected static override readonly refusesExistingVolume: boolean = false;
}

/** Opens a volume that another live process holds (E_LOCKED expected). */
class IgnoresLock extends ReplicatedVolume {
  protected static override readonly honoursLock: boolean = false;
}

/** The wide crash exploration (17 regions, cowmap crashes' second geometry) reaches it. */
const wideCrashes: readonly MutantStageKey[] = ['crashes-wide'];

export const mutants: Readonly<Record<string, Mutant>> = {
  'no-cow': { volumeClass: NoCopyOnWrite, description: 'no copy-on-write' },
  'cow-only-current': {
    volumeClass: CopyOnWriteOnlyInCurrent,
    description: 'copy-on-write only for regions in the current map',
  },
  'second-write-represerves': {
    volumeClass: SecondWriteRepreserves,
    description: 'a second write in a cycle re-preserves',
  },
  'no-next-bit-in-cycle': { volumeClass: NoNextBitDuringCycle, description: 'the next bit not set during a cycle' },
  'swap-keeps-next': { volumeClass: SwapKeepsNext, description: 'a swap that keeps the next map' },
  'transfer-sends-primary': {
    volumeClass: TransferSendsPrimary,
    description: 'a transfer that sends the primary instead of the snapshot view',
  },
  'complete-early': { volumeClass: CompletesEarly, description: 'completion before every region is sent' },
  'recovery-drops-cycle': { volumeClass: RecoveryDropsCycle, description: 'recovery that drops a running cycle' },
  // During a cycle the bit rides on the COW entry either way: only idle writes expose it.
  'next-bit-after-data': {
    volumeClass: NextBitAfterData,
    description: 'the next bit made durable after the data (idle writes)',
  },
  'cow-after-overwrite': { volumeClass: CopyAfterOverwrite, description: 'the COW copy written after the overwrite' },
  'swap-two-steps': { volumeClass: SwapInTwoSteps, description: 'a swap done in two durable steps' },
  'complete-before-next-durable': {
    volumeClass: CompletesBeforeNextDurable,
    description: 'completion before the next bits set in the cycle are durable in the map',
  },
  'recovery-forgets-next': {
    volumeClass: RecoveryForgetsNext,
    description: 'recovery that does not rebuild the next bits from the COW index',
  },
  'recovery-trusts-page-cache': {
    volumeClass: RecoveryTrustsPageCache,
    description: 'recovery that reads the page cache as durable (no sync at open)',
  },
  'ack-before-durable': {
    volumeClass: AcknowledgedBeforeDurable,
    description: 'a write acknowledged before it is durable',
  },
  // Issue 11: the classes of bugs that small geometries, label data and short histories miss.
  'transfer-sends-primary-from-region-8': {
    volumeClass: TransferSendsPrimaryFromRegion8,
    description: 'a transfer that sends the primary instead of the snapshot view, for regions 8 and up only',
    reachedBy: onlyConform,
  },
  'write-first-sector-only': {
    volumeClass: WritesFirstSectorOnly,
    // The crash exploration's 1024-byte regions reach it too.
    description: 'a write that replaces only the first 512-byte sector of a larger region',
  },
  'transfer-stops-at-zero-byte': {
    volumeClass: TransferStopsAtZeroByte,
    // The generators' full-region bytes reach it (label data padded with zeros would not).
    description: 'a transfer that copies a region only up to its first zero byte',
  },
  'map-keeps-8-bits': {
    volumeClass: MapKeepsFirst8Bits,
    description: 'a next map that keeps only its first 8 bits',
    reachedBy: onlyConform,
  },
  'cow-stops-after-50-ops': {
    volumeClass: CopyOnWriteStopsAfter50Operations,
    description: 'copy-on-write that stops after 50 operations since open',
    reachedBy: onlyConform,
  },
  'third-cycle-keeps-next-bit': {
    volumeClass: ThirdCycleKeepsNextBit,
    description: 'the third swap since open keeps a next bit',
    // The hand-written traces and the path tests run three cycles; fast-check's short sequences and the crash exploration do not.
    reachedBy: ['fig4', 'traces', 'paths', 'conform'],
  },
  'transfer-two-halves': {
    volumeClass: TransferInTwoHalves,
    description: 'a transfer that writes the secondary in two halves, each synced (a crash between them shows it)',
  },
  // The protocol's own rules at open: the verify stages never open a volume twice, nor a bad geometry.
  'accepts-unaligned-region-size': {
    volumeClass: AcceptsUnalignedRegionSize,
    description: 'create accepts a region size that is not a multiple of 512',
    reachedBy: onlyConform,
  },
  'creates-over-existing': {
    volumeClass: CreatesOverExistingVolume,
    description: 'create over an existing volume replaces it',
    reachedBy: onlyConform,
  },
  'ignores-lock': {
    volumeClass: IgnoresLock,
    description: 'open of a volume that another live process holds',
    reachedBy: onlyConform,
  },
  // Issue 12: what the crash exploration could not see before (names, create, recovery, rot).
  'recovery-without-dir-sync': {
    volumeClass: RecoveryWithoutDirSync,
    description:
      'open without the syncs of the volume and secondary directories (a meta that a power loss may take away)',
    reachedBy: ['crashes', 'crashes-wide'],
  },
  'init-overwrites-files': {
    volumeClass: InitOverwritesFiles,
    description: "init that removes files named like the volume's (a user's primary or cow)",
    reachedBy: ['crashes', 'crashes-wide'],
  },
  'recovery-ignores-digests': {
    volumeClass: RecoveryIgnoresDigests,
    description: 'recovery that takes a rotted COW copy for a torn preserve (rot mode)',
    reachedBy: ['crashes', 'crashes-wide'],
  },
  'completion-first-map-run': {
    volumeClass: CompletionWritesFirstMapRun,
    description: 'completion that writes only the first run of changed next-map bytes (17+ regions)',
    reachedBy: wideCrashes,
  },
  'recovery-truncates-map': {
    volumeClass: RecoveryTruncatesMap,
    description: 'recovery that truncates and re-extends the next map before writing it back',
    reachedBy: ['crashes', 'crashes-wide'],
  },
  'metadata-in-place': {
    volumeClass: MetadataUpdatedInPlace,
    description: 'the metadata in a single slot updated in place (a torn update inside the sector)',
    reachedBy: ['crashes', 'crashes-wide'],
  },
};

/**
 * The one lookup of a mutant by name (the CLI's --mutant, --only and the tests):
 * an unknown name is a RangeError that lists the known ones. Own keys only, so
 * that `constructor` or `toString` is no mutant.
 */
export function mutantNamed(name: string): Mutant {
  const mutant = Object.hasOwn(mutants, name) ? mutants[name] : undefined;
  if (mutant === undefined)
    throw new RangeError(`no mutant named '${name}' (known: ${Object.keys(mutants).join(', ')})`);
  return mutant;
}
