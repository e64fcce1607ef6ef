// The control block: the last 4096 bytes of a remote secondary's NBD export, past
// the image (docs/protocol.md section 10). It names the volume the export belongs to
// and where replication stands on the far side. The primary writes it at three
// moments, each followed by a FLUSH before the primary relies on it:
//
//   init            { cycle 0, state complete }   after the image is zeroed
//   a cycle starts  { cycle N, state sending }    before the cycle's first region
//   a cycle ends    { cycle N, state complete }   after the FLUSH that covers its last region
//
// To a plain NBD server (nbdkit file, qemu-nbd) it is 4096 bytes of the file like any
// other: the image at offset 0 stays a plain disk image of exactly the volume's size.
// `cowmap receive` reads a write of a valid block as the cycle's start or end signal
// (impl/receive/). The primary reads it back on every connect: a different volume id
// or geometry is E_CORRUPT before anything is written, and a cycle older than the
// one the primary last saw confirmed means the far side lost data it had confirmed.
//
// Byte layout (little-endian; the rest of the 4096 bytes are zero):
//   0   magic "cowmapCB"       8 bytes
//   8   version                u32 (1)
//   12  state                  u32 (1 sending, 2 complete)
//   16  volumeId               16 bytes
//   32  regions                u32
//   36  regionSize             u32
//   40  cycle                  u64 (a safe integer)
//   48  swapTimeMs             u64: wall clock of the cycle's swap in ms since the epoch, 0 unknown
//   56  batch                  u32: the batches of the cycle confirmed before this block was written
//   60  writer                 8 bytes: a random id of the primary's open that wrote it (0: none recorded)
//   68  seq                    u64: that open's count of control writes, this one included; never reused
//                              by an open, so a far side holding an older block of the same writer is
//                              older than every later one (impl/remote/farProgress.ts)
//   508 crc32 of bytes 0..507  u32
//
// writer and seq sit in bytes that version 1 left zero under the CRC: a block written
// before them decodes with writer 0 and seq 0, which no open uses.

import { randomBytes } from 'node:crypto';
import { assert } from '../assert.ts';
import { crc32, isAllZero } from '../checksum.ts';
import { volumeSize, type Geometry } from '../geometry.ts';
import { volumeIdSize } from '../metadata.ts';

/** Bytes of the control region at the end of the export; a multiple of every usual NBD block size. */
export const controlBlockSize = 4096;
export const controlBlockVersion = 1;
const checkedBytes = 508;
const magic = new TextEncoder().encode('cowmapCB');
const offsets = {
  magic: 0,
  version: 8,
  state: 12,
  volumeId: 16,
  regions: 32,
  regionSize: 36,
  cycle: 40,
  swapTimeMs: 48,
  batch: 56,
  writer: 60,
  seq: 68,
  checksum: checkedBytes,
} as const;

export type ControlState = 'sending' | 'complete';
const stateCodes: Record<ControlState, number> = { sending: 1, complete: 2 };

export interface ControlBlock extends Geometry {
  readonly volumeId: Uint8Array;
  readonly state: ControlState;
  readonly cycle: number;
  /** The swap's wall-clock time in ms since the epoch; 0 when the primary did not know it. */
  readonly swapTimeMs: number;
  readonly batch: number;
  /** The writing open's random id (controlWriterSize bytes); zeros when absent (a block of a writer that kept none). */
  readonly writer?: Uint8Array;
  /** The writing open's sequence number of this control write; 0 when absent. */
  readonly seq?: number;
}

/** Bytes of a control block's writer id. */
export const controlWriterSize = 8;

/** A random writer id for one open: its blocks are told from every other open's (never all zero: that is "none"). */
export function newControlWriter(): Uint8Array {
  const writer = new Uint8Array(randomBytes(controlWriterSize));
  writer[0] = (writer[0] ?? 0) | 1;
  return writer;
}

/** A decoded block: writer and seq always present. */
export type StoredControlBlock = ControlBlock & { readonly writer: Uint8Array; readonly seq: number };

/** The export size a secondary of this geometry must have: the image, then the control block. */
export function exportSizeOf(geometry: Geometry): number {
  return volumeSize(geometry) + controlBlockSize;
}

/** The control block's byte offset in the export: right after the image. */
export function controlOffsetOf(geometry: Geometry): number {
  return volumeSize(geometry);
}

export function encodeControlBlock(block: ControlBlock): Uint8Array {
  assert(block.volumeId.length === volumeIdSize, 'control block volume id size');
  assert(Number.isSafeInteger(block.cycle) && block.cycle >= 0, 'control block cycle');
  assert(Number.isSafeInteger(block.swapTimeMs) && block.swapTimeMs >= 0, 'control block swap time');
  const bytes = new Uint8Array(controlBlockSize);
  const view = new DataView(bytes.buffer);
  bytes.set(magic, offsets.magic);
  view.setUint32(offsets.version, controlBlockVersion, true);
  view.setUint32(offsets.state, stateCodes[block.state], true);
  bytes.set(block.volumeId, offsets.volumeId);
  view.setUint32(offsets.regions, block.regions, true);
  view.setUint32(offsets.regionSize, block.regionSize, true);
  view.setBigUint64(offsets.cycle, BigInt(block.cycle), true);
  view.setBigUint64(offsets.swapTimeMs, BigInt(block.swapTimeMs), true);
  view.setUint32(offsets.batch, block.batch, true);
  if (block.writer !== undefined) {
    assert(block.writer.length === controlWriterSize, 'control block writer size');
    bytes.set(block.writer, offsets.writer);
  }
  const seq = block.seq ?? 0;
  assert(Number.isSafeInteger(seq) && seq >= 0, 'control block seq');
  view.setBigUint64(offsets.seq, BigInt(seq), true);
  view.setUint32(offsets.checksum, crc32(bytes.subarray(0, checkedBytes)), true);
  return bytes;
}

/** What 4096 bytes of a control region hold. */
export type DecodedControl =
  | { kind: 'empty' }
  | { kind: 'block'; block: StoredControlBlock }
  | { kind: 'invalid'; problem: string };

/**
 * Reads a control region: all zero is `empty` (a fresh export), a block whose magic,
 * version and CRC hold is `block`, anything else `invalid` with why.
 */
export function decodeControlBlock(bytes: Uint8Array): DecodedControl {
  if (bytes.length !== controlBlockSize)
    return { kind: 'invalid', problem: `${bytes.length} bytes, not ${controlBlockSize}` };
  if (isAllZero(bytes)) return { kind: 'empty' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < magic.length; i++) {
    if (bytes[offsets.magic + i] !== magic[i])
      return { kind: 'invalid', problem: 'no cowmap control block (bad magic)' };
  }
  if (view.getUint32(offsets.checksum, true) !== crc32(bytes.subarray(0, checkedBytes)))
    return { kind: 'invalid', problem: 'the control block fails its CRC-32' };
  const version = view.getUint32(offsets.version, true);
  if (version !== controlBlockVersion) return { kind: 'invalid', problem: `control block version ${version}` };
  const stateCode = view.getUint32(offsets.state, true);
  const state = (Object.keys(stateCodes) as ControlState[]).find((name) => stateCodes[name] === stateCode);
  if (state === undefined) return { kind: 'invalid', problem: `control block state ${stateCode}` };
  const cycle = Number(view.getBigUint64(offsets.cycle, true));
  const swapTimeMs = Number(view.getBigUint64(offsets.swapTimeMs, true));
  const seq = Number(view.getBigUint64(offsets.seq, true));
  if (!Number.isSafeInteger(cycle) || !Number.isSafeInteger(swapTimeMs) || !Number.isSafeInteger(seq))
    return { kind: 'invalid', problem: 'control block cycle, time or seq out of range' };
  return {
    kind: 'block',
    block: {
      volumeId: bytes.slice(offsets.volumeId, offsets.volumeId + volumeIdSize),
      state,
      regions: view.getUint32(offsets.regions, true),
      regionSize: view.getUint32(offsets.regionSize, true),
      cycle,
      swapTimeMs,
      batch: view.getUint32(offsets.batch, true),
      writer: bytes.slice(offsets.writer, offsets.writer + controlWriterSize),
      seq,
    },
  };
}

/**
 * Why a decoded control region is not this volume's secondary, or null when it is
 * (an `empty` region is never this volume's: only init may claim it).
 */
export function controlIdentityProblem(
  decoded: DecodedControl,
  identity: Geometry & { volumeId: Uint8Array },
): string | null {
  if (decoded.kind === 'empty') return 'the control block is empty: the export was never initialised for this volume';
  if (decoded.kind === 'invalid') return decoded.problem;
  const { block } = decoded;
  if (!Buffer.from(block.volumeId).equals(Buffer.from(identity.volumeId))) return 'it belongs to another volume';
  if (block.regions !== identity.regions || block.regionSize !== identity.regionSize)
    return `geometry ${block.regions} x ${block.regionSize}, the volume has ${identity.regions} x ${identity.regionSize}`;
  return null;
}
