// The receiver's header, DIR2/receiver: two 512-byte slots, each a whole copy of the
// store's durable state with a sequence number and a CRC-32, as DIR/meta
// (impl/metadata.ts): the valid slot with the highest sequence wins, an update writes
// the other slot and syncs, so each update is ONE atomic durable step even when the
// sector write is torn or lost. The commit of a cycle is one such update.
// Byte layout: docs/format.md, "The receiver's files".

import { assert } from '../assert.ts';
import { crc32, isAllZero } from '../checksum.ts';
import { CowmapError } from '../errors.ts';
import { geometryProblem, sectorSize } from '../geometry.ts';
import { volumeIdSize } from '../metadata.ts';
import type { ReplicaIdentity } from '../replica.ts';
import type { FileHandle, Storage } from '../storage.ts';

export const receiverFormatVersion = 1;
export const stateSlotSize = sectorSize;
const slotCount = 2;
export const stateFileSize = stateSlotSize * slotCount;
const magic = new TextEncoder().encode('cowmapRV');
const offsets = {
  magic: 0,
  version: 8,
  flags: 12,
  sequence: 16,
  exportSize: 24,
  volumeId: 32,
  regions: 48,
  regionSize: 52,
  completedCycle: 56,
  completedSwapTimeMs: 64,
  journalEpoch: 72,
  journalCycle: 80,
  journalCommittedBytes: 88,
  journalFile: 96,
  checksum: 508,
} as const;
const flagBits = { identity: 1, imageFresh: 2 } as const;

/** The journal as the state records it. */
export interface JournalState {
  /** Records of another epoch do not count (receiverJournal.ts). */
  readonly epoch: number;
  /** Which journal file is live: DIR2/journal0 or DIR2/journal1. */
  readonly file: 0 | 1;
  /** The cycle whose journal it is, or null: no journal (nothing to read, nothing to apply). */
  readonly cycle: number | null;
  /** Set by the commit: the journal's first this many bytes are cycle `cycle`, committed, to apply. */
  readonly committedBytes: number | null;
}

export interface ReceiverState {
  /** Bumped by every update; slot `sequence % 2` holds it. */
  readonly sequence: number;
  readonly exportSize: number;
  readonly identity: ReplicaIdentity | null;
  readonly completedCycle: number | null;
  readonly completedSwapTimeMs: number;
  /** Nothing was ever applied to DIR2/image: it is the zeros create made (a journal's zeros need no write). */
  readonly imageFresh: boolean;
  readonly journal: JournalState;
}

/** Encodes a count that may be null as count + 1 (0: null). */
function optionalCount(value: number | null): bigint {
  return value === null ? 0n : BigInt(value) + 1n;
}

function decodedOptional(value: bigint): number | null {
  return value === 0n ? null : Number(value - 1n);
}

export function encodeStateSlot(state: ReceiverState): Uint8Array {
  assert(Number.isSafeInteger(state.sequence) && state.sequence >= 1, `receiver state sequence ${state.sequence}`);
  const bytes = new Uint8Array(stateSlotSize);
  const view = new DataView(bytes.buffer);
  bytes.set(magic, offsets.magic);
  view.setUint32(offsets.version, receiverFormatVersion, true);
  const flags = (state.identity === null ? 0 : flagBits.identity) | (state.imageFresh ? flagBits.imageFresh : 0);
  view.setUint32(offsets.flags, flags, true);
  view.setBigUint64(offsets.sequence, BigInt(state.sequence), true);
  view.setBigUint64(offsets.exportSize, BigInt(state.exportSize), true);
  if (state.identity !== null) {
    assert(state.identity.volumeId.length === volumeIdSize, 'receiver volume id size');
    bytes.set(state.identity.volumeId, offsets.volumeId);
    view.setUint32(offsets.regions, state.identity.regions, true);
    view.setUint32(offsets.regionSize, state.identity.regionSize, true);
  }
  view.setBigUint64(offsets.completedCycle, optionalCount(state.completedCycle), true);
  view.setBigUint64(offsets.completedSwapTimeMs, BigInt(state.completedSwapTimeMs), true);
  view.setBigUint64(offsets.journalEpoch, BigInt(state.journal.epoch), true);
  view.setBigUint64(offsets.journalCycle, optionalCount(state.journal.cycle), true);
  view.setBigUint64(offsets.journalCommittedBytes, optionalCount(state.journal.committedBytes), true);
  view.setUint32(offsets.journalFile, state.journal.file, true);
  view.setUint32(offsets.checksum, crc32(bytes.subarray(0, offsets.checksum)), true);
  return bytes;
}

/** A slot: `absent` when its CRC fails (never written, or torn); E_CORRUPT when the CRC holds over foreign fields. */
export function decodeStateSlot(bytes: Uint8Array, slot: number, path: string): ReceiverState | 'absent' {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(offsets.checksum, true) !== crc32(bytes.subarray(0, offsets.checksum))) return 'absent';
  const where = `open: ${path} slot ${slot}`;
  for (let i = 0; i < magic.length; i++)
    if (bytes[offsets.magic + i] !== magic[i])
      throw new CowmapError('E_CORRUPT', `${where}: bad magic under a valid checksum (not a cowmap receiver)`);
  const version = view.getUint32(offsets.version, true);
  if (version !== receiverFormatVersion)
    throw new CowmapError('E_CORRUPT', `${where}: unknown format version ${version}`);
  const flags = view.getUint32(offsets.flags, true);
  const sequence = Number(view.getBigUint64(offsets.sequence, true));
  if (!Number.isSafeInteger(sequence) || sequence < 1 || sequence % slotCount !== slot)
    throw new CowmapError('E_CORRUPT', `${where}: sequence ${sequence} cannot be in slot ${slot}`);
  const identity: ReplicaIdentity | null =
    (flags & flagBits.identity) === 0
      ? null
      : {
          volumeId: bytes.slice(offsets.volumeId, offsets.volumeId + volumeIdSize),
          regions: view.getUint32(offsets.regions, true),
          regionSize: view.getUint32(offsets.regionSize, true),
        };
  const geometry = identity === null ? null : geometryProblem(identity);
  if (geometry !== null) throw new CowmapError('E_CORRUPT', `${where}: ${geometry}`);
  const file = view.getUint32(offsets.journalFile, true);
  if (file !== 0 && file !== 1) throw new CowmapError('E_CORRUPT', `${where}: journal file ${file}`);
  return {
    sequence,
    exportSize: Number(view.getBigUint64(offsets.exportSize, true)),
    identity,
    completedCycle: decodedOptional(view.getBigUint64(offsets.completedCycle, true)),
    completedSwapTimeMs: Number(view.getBigUint64(offsets.completedSwapTimeMs, true)),
    imageFresh: (flags & flagBits.imageFresh) !== 0,
    journal: {
      epoch: Number(view.getBigUint64(offsets.journalEpoch, true)),
      file,
      cycle: decodedOptional(view.getBigUint64(offsets.journalCycle, true)),
      committedBytes: decodedOptional(view.getBigUint64(offsets.journalCommittedBytes, true)),
    },
  };
}

export type StateChange = Partial<Omit<ReceiverState, 'sequence' | 'exportSize'>>;

/** DIR2/receiver, open. */
export class ReceiverStateFile {
  readonly file: FileHandle;
  private winner: ReceiverState;

  private constructor(file: FileHandle, winner: ReceiverState) {
    this.file = file;
    this.winner = winner;
  }

  get state(): ReceiverState {
    return this.winner;
  }

  /**
   * The first state of a new store, written to `temporaryPath`, synced, renamed to
   * `path`; the caller syncs the directory (the rename is what makes the store exist).
   */
  static create(storage: Storage, path: string, temporaryPath: string, first: ReceiverState): ReceiverStateFile {
    assert(first.sequence === 1, 'a new receiver starts at sequence 1');
    const bytes = new Uint8Array(stateFileSize);
    bytes.set(encodeStateSlot(first), (first.sequence % slotCount) * stateSlotSize);
    const temporary = storage.open(temporaryPath, { create: true });
    try {
      temporary.write(0, bytes);
      temporary.sync();
    } finally {
      temporary.close();
    }
    storage.rename(temporaryPath, path);
    return new ReceiverStateFile(storage.open(path, { create: false }), first);
  }

  /** Both slots read, the winner picked; E_CORRUPT when none is valid, the size is wrong or they disagree. */
  static load(file: FileHandle): ReceiverStateFile {
    if (file.size() !== stateFileSize)
      throw new CowmapError('E_CORRUPT', `open: ${file.path} is ${file.size()} bytes, not ${stateFileSize}`);
    const bytes = file.read(0, stateFileSize);
    const slots: ReceiverState[] = [];
    for (let slot = 0; slot < slotCount; slot++) {
      const decoded = decodeStateSlot(
        bytes.subarray(slot * stateSlotSize, (slot + 1) * stateSlotSize),
        slot,
        file.path,
      );
      if (decoded !== 'absent') slots.push(decoded);
    }
    if (slots.length === 0) {
      const what = isAllZero(bytes) ? 'is all zeros' : 'has no valid slot (bad checksum)';
      throw new CowmapError('E_CORRUPT', `open: ${file.path} ${what}`);
    }
    slots.sort((a, b) => b.sequence - a.sequence);
    const [winner, loser] = slots as [ReceiverState, ReceiverState | undefined];
    if (loser !== undefined && (winner.sequence !== loser.sequence + 1 || winner.exportSize !== loser.exportSize))
      throw new CowmapError(
        'E_CORRUPT',
        `open: ${file.path} slots disagree (sequences ${winner.sequence}, ${loser.sequence})`,
      );
    return new ReceiverStateFile(file, winner);
  }

  /** One atomic durable step: the other slot, then one sync; the new state wins in memory only after it. */
  update(change: StateChange): void {
    const next: ReceiverState = { ...this.winner, ...change, sequence: this.winner.sequence + 1 };
    this.file.write((next.sequence % slotCount) * stateSlotSize, encodeStateSlot(next));
    this.file.sync();
    this.winner = next;
  }

  close(): void {
    this.file.close();
  }
}
