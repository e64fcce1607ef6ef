// The journal of a receiver's running cycle (DIR2/journal0 or DIR2/journal1, the
// state says which; docs/format.md, "The receiver's files"): records appended one
// after the other from offset 0, each a 48-byte header and, for a data record, its
// bytes. A record counts only if its magic, its epoch (the state's: a journal is
// restarted by bumping the epoch, so records of an earlier use are dead without
// being erased) and its CRC-32 (header and data) hold, and only the records before
// the first one that fails count: appends never go back, so a record that fails is
// the tail a crash cut, and every record after it was written after it and never
// covered by a sync (recovery cuts the file there, see receiverStore.ts).
//
// Record header (little-endian):
//   0   magic "cmRJ"    4 bytes
//   4   kind            u32: 1 data (length bytes follow), 2 zeros (nothing follows)
//   8   epoch           u64
//   16  offset          u64: the byte offset in the export
//   24  length          u64
//   32  reserved        8 bytes, zero
//   40  crc32           u32 of header bytes 0..39 then the data
//   44  reserved        4 bytes, zero

import { crc32 as zlibCrc32 } from 'node:zlib';
import { assert } from '../assert.ts';
import type { FileHandle } from '../storage.ts';
import { JournalIndex, zeroSource } from './receiverJournalIndex.ts';

export const recordHeaderSize = 48;
/** A write longer than this goes in several records, so that recovery reads a record in one buffer. */
export const recordDataMax = 8 * 1024 * 1024;
const magic = new TextEncoder().encode('cmRJ');
const kinds = { data: 1, zeros: 2 } as const;
const headerOffsets = { magic: 0, kind: 4, epoch: 8, offset: 16, length: 24, checksum: 40 } as const;

function recordHeader(kind: number, epoch: number, offset: number, length: number): Uint8Array {
  const header = new Uint8Array(recordHeaderSize);
  const view = new DataView(header.buffer);
  header.set(magic, headerOffsets.magic);
  view.setUint32(headerOffsets.kind, kind, true);
  view.setBigUint64(headerOffsets.epoch, BigInt(epoch), true);
  view.setBigUint64(headerOffsets.offset, BigInt(offset), true);
  view.setBigUint64(headerOffsets.length, BigInt(length), true);
  return header;
}

function recordCrc(header: Uint8Array, data: Uint8Array | null): number {
  const headerCrc = zlibCrc32(header.subarray(0, headerOffsets.checksum));
  return (data === null ? headerCrc : zlibCrc32(data, headerCrc)) >>> 0;
}

/** A record as scanning found it. */
interface ScannedRecord {
  readonly kind: 'data' | 'zeros';
  readonly offset: number;
  readonly length: number;
  /** Its size in the file, header included. */
  readonly size: number;
}

/** Where a scan stopped, and why when it stopped before its limit. */
export interface ScanEnd {
  readonly tail: number;
  /** Why the record at `tail` does not count, or null when the scan reached its limit. */
  readonly problem: string | null;
}

export class ReceiverJournal {
  readonly file: FileHandle;
  readonly epoch: number;
  /** The end of the last record that counts: the next append goes here. */
  private tailBytes: number;
  readonly index: JournalIndex;
  private unsynced = false;

  private constructor(file: FileHandle, epoch: number, tail: number, index: JournalIndex) {
    this.file = file;
    this.epoch = epoch;
    this.tailBytes = tail;
    this.index = index;
  }

  /** An empty journal of `epoch` in `file`: the file is cut to 0 (durable with the next sync; a dead epoch meanwhile). */
  static restart(file: FileHandle, epoch: number): ReceiverJournal {
    file.truncate(0);
    const journal = new ReceiverJournal(file, epoch, 0, new JournalIndex());
    journal.unsynced = true;
    return journal;
  }

  /**
   * The records of `epoch` in `file` that count, up to `limitBytes` (the whole file
   * when null): the journal and where the scan ended. Reads each record once.
   */
  static scan(file: FileHandle, epoch: number, limitBytes: number | null): { journal: ReceiverJournal; end: ScanEnd } {
    const limit = limitBytes ?? file.size();
    const index = new JournalIndex();
    let position = 0;
    let problem: string | null = null;
    while (position < limit) {
      const scanned = scanRecord(file, epoch, position, limit);
      if (typeof scanned === 'string') {
        problem = scanned;
        break;
      }
      index.set(scanned.offset, scanned.length, scanned.kind === 'data' ? position + recordHeaderSize : zeroSource);
      position += scanned.size;
    }
    return { journal: new ReceiverJournal(file, epoch, position, index), end: { tail: position, problem } };
  }

  get tail(): number {
    return this.tailBytes;
  }

  get needsSync(): boolean {
    return this.unsynced;
  }

  /** Appends the write as records (one per recordDataMax bytes): one pwrite each, not durable until `sync`. */
  appendData(offset: number, bytes: Uint8Array): void {
    for (let done = 0; done < bytes.length; done += recordDataMax) {
      const part = bytes.subarray(done, Math.min(bytes.length, done + recordDataMax));
      const header = recordHeader(kinds.data, this.epoch, offset + done, part.length);
      new DataView(header.buffer).setUint32(headerOffsets.checksum, recordCrc(header, part), true);
      const record = new Uint8Array(recordHeaderSize + part.length);
      record.set(header, 0);
      record.set(part, recordHeaderSize);
      this.file.write(this.tailBytes, record);
      this.index.set(offset + done, part.length, this.tailBytes + recordHeaderSize);
      this.tailBytes += record.length;
    }
    this.unsynced = this.unsynced || bytes.length > 0;
  }

  /** Appends a record of zeros over [offset, offset + length): one pwrite of the header. */
  appendZeros(offset: number, length: number): void {
    if (length === 0) return;
    const header = recordHeader(kinds.zeros, this.epoch, offset, length);
    new DataView(header.buffer).setUint32(headerOffsets.checksum, recordCrc(header, null), true);
    this.file.write(this.tailBytes, header);
    this.index.set(offset, length, zeroSource);
    this.tailBytes += recordHeaderSize;
    this.unsynced = true;
  }

  /** Bytes of the journal file (an extent's data). */
  read(source: number, length: number): Uint8Array {
    assert(source >= 0 && source + length <= this.tailBytes, `journal read ${source}+${length} past ${this.tailBytes}`);
    return this.file.read(source, length);
  }

  /** fdatasync, when anything was written since the last one. */
  sync(): void {
    if (!this.unsynced) return;
    this.file.sync();
    this.unsynced = false;
  }

  /** Cuts the file at the tail (recovery: what is past it never counted) and syncs. */
  cutAtTail(): void {
    if (this.file.size() !== this.tailBytes) this.file.truncate(this.tailBytes);
    this.file.sync();
    this.unsynced = false;
  }
}

/** The record at `position`, or why it does not count. */
function scanRecord(file: FileHandle, epoch: number, position: number, limit: number): ScannedRecord | string {
  if (position + recordHeaderSize > limit) return `a partial record header at ${position}`;
  const header = file.read(position, recordHeaderSize).slice();
  const view = new DataView(header.buffer);
  for (let i = 0; i < magic.length; i++)
    if (header[headerOffsets.magic + i] !== magic[i]) return `no record at ${position} (bad magic)`;
  const recordEpoch = Number(view.getBigUint64(headerOffsets.epoch, true));
  if (recordEpoch !== epoch) return `the record at ${position} is of epoch ${recordEpoch}, not ${epoch}`;
  const kindCode = view.getUint32(headerOffsets.kind, true);
  const offset = Number(view.getBigUint64(headerOffsets.offset, true));
  const length = Number(view.getBigUint64(headerOffsets.length, true));
  const dataLength = kindCode === kinds.data ? length : 0;
  if (kindCode !== kinds.data && kindCode !== kinds.zeros) return `the record at ${position} is of kind ${kindCode}`;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || dataLength > recordDataMax)
    return `the record at ${position} has offset ${offset} and length ${length}`;
  if (position + recordHeaderSize + dataLength > limit) return `the record at ${position} is cut short`;
  const data = kindCode === kinds.data ? file.read(position + recordHeaderSize, dataLength) : null;
  if (view.getUint32(headerOffsets.checksum, true) !== recordCrc(header, data))
    return `the record at ${position} fails its CRC-32`;
  return {
    kind: kindCode === kinds.data ? 'data' : 'zeros',
    offset,
    length,
    size: recordHeaderSize + dataLength,
  };
}
