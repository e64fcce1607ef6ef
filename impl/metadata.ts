// The metadata file DIR/meta: two 512-byte slots, each a whole copy of the volume's
// durable state (geometry, cycle number, phase, which map file is current) with a
// sequence number and a CRC-32. The valid slot with the highest sequence wins; an
// update writes the OTHER slot and syncs, so it is atomic even when the sector
// write is torn or lost: the winner before the update stays valid until the new
// slot is durable. The swap and the completion of a cycle are each ONE update.
// Byte layout: docs/format.md, "DIR/meta".

import { assert } from './assert.ts';
import { crc32, isAllZero } from './checksum.ts';
import { CowmapError } from './errors.ts';
import { geometryProblem, sectorSize } from './geometry.ts';
import { fileNames, volumePath } from './layout.ts';
import type { ScrubFinding } from './scrubFinding.ts';
import type { FileHandle, Storage } from './storage.ts';

export type Phase = 'idle' | 'replicating';

export interface MetadataRecord {
  /** Bumped by every update; slot `sequence % 2` holds it. */
  readonly sequence: number;
  /** Random at create; the secondary's header carries it too, so a foreign secondary is refused. */
  readonly volumeId: Uint8Array;
  readonly regions: number;
  readonly regionSize: number;
  /** The number of swaps so far; COW index entries are valid only for the running cycle's number. */
  readonly cycle: number;
  readonly phase: Phase;
  /** Which map file (DIR/map0 or DIR/map1) is the current map C; the other is the next map X. */
  readonly currentMap: 0 | 1;
  /** The secondary's directory relative to DIR, "" for DIR/secondary (impl/layout.ts). */
  readonly secondary: string;
}

/** Version 2: map files in checksummed pages, COW entries stamped with the metadata sequence (docs/format.md). */
export const formatVersion = 2;
export const slotSize = sectorSize;
export const slotCount = 2;
export const metadataFileSize = slotSize * slotCount;
export const volumeIdSize = 16;
const magic = new TextEncoder().encode('cowmapMD');

// Field offsets inside a slot, little-endian (docs/format.md).
const offsets = {
  magic: 0,
  version: 8,
  reserved: 12,
  sequence: 16,
  volumeId: 24,
  regions: 40,
  regionSize: 44,
  cycle: 48,
  phase: 56,
  currentMap: 57,
  secondaryLength: 58,
  secondary: 60,
  checksum: 508,
} as const;
export const secondaryBytesMax = offsets.checksum - offsets.secondary;

export function encodeSlot(record: MetadataRecord): Uint8Array {
  const bytes = new Uint8Array(slotSize);
  const view = new DataView(bytes.buffer);
  const secondary = new TextEncoder().encode(record.secondary);
  assert(secondary.length <= secondaryBytesMax, `secondary path of ${secondary.length} bytes`);
  assert(record.volumeId.length === volumeIdSize, 'volume id size');
  assert(Number.isSafeInteger(record.sequence) && record.sequence >= 1, `sequence ${record.sequence}`);
  assert(Number.isSafeInteger(record.cycle) && record.cycle >= 0, `cycle ${record.cycle}`);
  bytes.set(magic, offsets.magic);
  view.setUint32(offsets.version, formatVersion, true);
  view.setBigUint64(offsets.sequence, BigInt(record.sequence), true);
  bytes.set(record.volumeId, offsets.volumeId);
  view.setUint32(offsets.regions, record.regions, true);
  view.setUint32(offsets.regionSize, record.regionSize, true);
  view.setBigUint64(offsets.cycle, BigInt(record.cycle), true);
  view.setUint8(offsets.phase, record.phase === 'idle' ? 0 : 1);
  view.setUint8(offsets.currentMap, record.currentMap);
  view.setUint16(offsets.secondaryLength, secondary.length, true);
  bytes.set(secondary, offsets.secondary);
  view.setUint32(offsets.checksum, crc32(bytes.subarray(0, offsets.checksum)), true);
  return bytes;
}

/**
 * A slot is `absent` when its checksum fails, whatever its magic and version say
 * (never written, or torn by a crash during its update: a tear inside the sector
 * may leave any mix of old and new bytes, version 0 included): the other slot
 * then decides. A slot whose checksum holds but whose magic, version or fields
 * are not this build's was not torn: the volume is foreign or damaged (E_CORRUPT).
 */
export function decodeSlot(bytes: Uint8Array, slot: number, path: string): MetadataRecord | 'absent' {
  assert(bytes.length === slotSize, 'slot size');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(offsets.checksum, true) !== crc32(bytes.subarray(0, offsets.checksum))) return 'absent';
  const where = `open: ${path} slot ${slot}`;
  for (let i = 0; i < magic.length; i++) {
    if (bytes[offsets.magic + i] !== magic[i])
      throw new CowmapError('E_CORRUPT', `${where}: bad magic under a valid checksum (not a cowmap metadata file)`);
  }
  const version = view.getUint32(offsets.version, true);
  if (version !== formatVersion)
    throw new CowmapError(
      'E_CORRUPT',
      `${where}: unknown format version ${version} (this build reads ${formatVersion})`,
    );

  const sequence = Number(view.getBigUint64(offsets.sequence, true));
  const cycle = Number(view.getBigUint64(offsets.cycle, true));
  const regions = view.getUint32(offsets.regions, true);
  const regionSize = view.getUint32(offsets.regionSize, true);
  const phase = view.getUint8(offsets.phase);
  const currentMap = view.getUint8(offsets.currentMap);
  const secondaryLength = view.getUint16(offsets.secondaryLength, true);
  const problem = fieldsProblem(slot, sequence, cycle, regions, regionSize, phase, currentMap, secondaryLength);
  if (problem !== null) throw new CowmapError('E_CORRUPT', `${where}: ${problem}`);

  let secondary: string;
  try {
    secondary = new TextDecoder('utf-8', { fatal: true }).decode(
      bytes.subarray(offsets.secondary, offsets.secondary + secondaryLength),
    );
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new CowmapError('E_CORRUPT', `${where}: the secondary path is not UTF-8`);
  }
  return {
    sequence,
    volumeId: bytes.slice(offsets.volumeId, offsets.volumeId + volumeIdSize),
    regions,
    regionSize,
    cycle,
    phase: phase === 0 ? 'idle' : 'replicating',
    currentMap: currentMap === 0 ? 0 : 1,
    secondary,
  };
}

/** Why checksummed fields cannot be a record this build wrote, or null. */
function fieldsProblem(
  slot: number,
  sequence: number,
  cycle: number,
  regions: number,
  regionSize: number,
  phase: number,
  currentMap: number,
  secondaryLength: number,
): string | null {
  if (!Number.isSafeInteger(sequence) || sequence < 1 || sequence % slotCount !== slot)
    return `sequence ${sequence} cannot be in slot ${slot}`;
  if (!Number.isSafeInteger(cycle)) return `cycle ${cycle} out of range`;
  const geometry = geometryProblem({ regions, regionSize });
  if (geometry !== null) return geometry;
  if (phase > 1) return `phase byte ${phase}`;
  // Every swap flips the roles of the maps and bumps the cycle number, so map0 is
  // current in even cycles and map1 in odd ones.
  if (currentMap !== cycle % 2) return `current map ${currentMap} in cycle ${cycle}`;
  if (secondaryLength > secondaryBytesMax) return `secondary path length ${secondaryLength}`;
  return null;
}

export type MetadataChange = Partial<Pick<MetadataRecord, 'cycle' | 'phase' | 'currentMap'>>;

export class MetadataStore {
  readonly file: FileHandle;
  private winner: MetadataRecord;
  /**
   * The slot that failed its checksum at load and is not all zeros (a torn update,
   * or rot), or null. The evidence rule (docs/format.md, "Recovery") asks the
   * volume to look for records stamped later than the winner when it is set.
   */
  readonly damagedSlot: number | null;

  private constructor(file: FileHandle, winner: MetadataRecord, damagedSlot: number | null = null) {
    this.file = file;
    this.winner = winner;
    this.damagedSlot = damagedSlot;
  }

  get record(): MetadataRecord {
    return this.winner;
  }

  /**
   * Writes a new volume's metadata, the last step of create: the whole file goes to
   * DIR/meta.tmp, is synced, renamed to DIR/meta and the directory synced. Until the
   * rename is durable there is no DIR/meta, so a half-created volume opens as
   * E_NOT_FOUND and create may run over it again.
   */
  static create(storage: Storage, dir: string, record: MetadataRecord): MetadataStore {
    assert(record.sequence === 1, 'a new volume starts at sequence 1');
    const bytes = new Uint8Array(metadataFileSize);
    // Slot 1 holds sequence 1; slot 0 stays zero (no magic: absent).
    bytes.set(encodeSlot(record), (record.sequence % slotCount) * slotSize);
    const temporaryPath = volumePath(dir, fileNames.metadataTemporary);
    const temporary = storage.open(temporaryPath, { create: true });
    try {
      temporary.write(0, bytes);
      temporary.sync();
    } finally {
      temporary.close();
    }
    const path = volumePath(dir, fileNames.metadata);
    storage.rename(temporaryPath, path);
    storage.syncDir(dir);
    return new MetadataStore(storage.open(path, { create: false }), record);
  }

  /** Reads both slots and picks the winner; E_CORRUPT when none is valid or they disagree. */
  static load(file: FileHandle): MetadataStore {
    const actual = file.size();
    if (actual !== metadataFileSize) {
      throw new CowmapError('E_CORRUPT', `open: ${file.path} is ${actual} bytes, not ${metadataFileSize}`);
    }
    const bytes = file.read(0, metadataFileSize);
    const slots: MetadataRecord[] = [];
    let damagedSlot: number | null = null;
    for (let slot = 0; slot < slotCount; slot++) {
      const slotBytes = bytes.subarray(slot * slotSize, (slot + 1) * slotSize);
      const decoded = decodeSlot(slotBytes, slot, file.path);
      if (decoded !== 'absent') slots.push(decoded);
      else if (!isAllZero(slotBytes)) damagedSlot = slot;
    }
    if (slots.length === 0)
      throw new CowmapError('E_CORRUPT', `open: ${file.path} has no valid metadata slot (bad magic or checksum)`);
    slots.sort((a, b) => b.sequence - a.sequence);
    const winner = slots[0]!;
    const loser = slots[1];
    if (loser !== undefined) {
      const agree =
        winner.sequence === loser.sequence + 1 &&
        winner.regions === loser.regions &&
        winner.regionSize === loser.regionSize &&
        winner.secondary === loser.secondary &&
        Buffer.from(winner.volumeId).equals(loser.volumeId);
      if (!agree)
        throw new CowmapError(
          'E_CORRUPT',
          `open: ${file.path} slots disagree (sequences ${winner.sequence} and ${loser.sequence})`,
        );
    }
    return new MetadataStore(file, winner, damagedSlot);
  }

  /**
   * The evidence rule (docs/format.md, "Recovery"): when a slot failed its checksum
   * and the surviving slot won, a record stamped with a later sequence than the
   * winner's proves that a newer metadata record was durable and is gone. Rolling
   * back to the older slot would silently drop what that record said (a cycle's
   * next bits): E_CORRUPT instead. `laterStamp` is the greatest such stamp found, or null.
   */
  checkEvidence(laterStamp: { stamp: number; what: string } | null): void {
    if (this.damagedSlot === null || laterStamp === null || laterStamp.stamp <= this.winner.sequence) return;
    throw new CowmapError(
      'E_CORRUPT',
      `open: ${this.file.path} slot ${this.damagedSlot} fails its checksum, and ${laterStamp.what} is ` +
        `stamped with metadata sequence ${laterStamp.stamp}, later than the surviving slot's ` +
        `${this.winner.sequence}: a newer record was lost`,
    );
  }

  /** Reads both slots again (docs/format.md, "Scrub"): a slot failing its checksum that is not all zeros is a finding. */
  scrub(): ScrubFinding[] {
    const bytes = this.file.read(0, metadataFileSize);
    const findings: ScrubFinding[] = [];
    for (let slot = 0; slot < slotCount; slot++) {
      const slotBytes = bytes.subarray(slot * slotSize, (slot + 1) * slotSize);
      const valid =
        new DataView(slotBytes.buffer, slotBytes.byteOffset, slotSize).getUint32(offsets.checksum, true) ===
        crc32(slotBytes.subarray(0, offsets.checksum));
      if (valid || isAllZero(slotBytes)) continue;
      findings.push({
        file: this.file.path,
        offset: slot * slotSize,
        region: null,
        problem: `metadata slot ${slot} fails its CRC-32 (never repaired)`,
        repaired: false,
      });
    }
    return findings;
  }

  /**
   * One atomic durable step: the new record goes to the slot the winner is not in,
   * then one sync (2 durable calls, whatever the volume's size). Only once the sync
   * has returned does the new record win in memory.
   */
  update(change: MetadataChange): void {
    const next: MetadataRecord = { ...this.winner, ...change, sequence: this.winner.sequence + 1 };
    const slot = next.sequence % slotCount;
    assert(slot !== this.winner.sequence % slotCount, 'an update must not overwrite the winning slot');
    this.file.write(slot * slotSize, encodeSlot(next));
    this.file.sync();
    this.winner = next;
  }

  close(): void {
    this.file.close();
  }
}
