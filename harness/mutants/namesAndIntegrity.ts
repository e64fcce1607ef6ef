// Mutants of the durability of names and of integrity: directory syncs at
// open, init over a user's files, digests at recovery, the map and metadata
// writes; the crash exploration (its create, recovery, torn and rot modes)
// catches them.

import type { Geometry } from '../../impl/geometry.ts';
import { pageBitBytes, regionsPerPage } from '../../impl/mapPage.ts';
import { encodeSlot, slotSize, type MetadataChange, type MetadataRecord } from '../../impl/metadata.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import type { FileHandle, Storage } from '../../impl/storage.ts';
import { HookedStorage } from '../storage/hookedStorage.ts';
import type { CreateOptions, OpenOptions, VolumeParts } from '../../impl/volumeParts.ts';
/** The storage family's pass-through (harness/storage/) whose syncDir does nothing while `skipping` is set. */
class DirSyncSkipper extends HookedStorage {
  skipping = true;
  protected before(): void {}
  override syncDir(path: string): void {
    if (!this.skipping) super.syncDir(path);
  }
}

type Constructed<T> = new (parts: VolumeParts) => T;

/**
 * Open (and its recovery) without the syncs of DIR and the secondary's directory:
 * a create killed after renaming `meta` into place and before its directory sync
 * leaves a name that a power loss after acknowledged writes can take away.
 */
export class RecoveryWithoutDirSync extends ReplicatedVolume {
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
export class InitOverwritesFiles extends ReplicatedVolume {
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
export class RecoveryIgnoresDigests extends ReplicatedVolume {
  protected override isTornPreserve(): boolean {
    return true;
  }
}

/**
 * Completion writes only the first run of changed map bytes of the next map: the
 * bits of a later, separate run of bytes (regions 16..23 after a change in 0..7)
 * stay in memory only, and a restart loses them.
 */
export class CompletionWritesFirstMapRun extends ReplicatedVolume {
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
export class RecoveryTruncatesMap extends ReplicatedVolume {
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
export class MetadataUpdatedInPlace extends ReplicatedVolume {
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
