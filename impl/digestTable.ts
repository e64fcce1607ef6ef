// The secondary's digest table, DIR2/digests (docs/format.md, "DIR2/digests"): the
// CRC-32 of each region of S as it was last sent, so that a read of S and scrub can
// tell a region that rotted on the secondary from one that is as sent.
//
// Pages of 4096 bytes, page p holding the entries of regions p*1020 .. p*1020+1019:
//   0..4079     1020 entries, entry i = crc32(region p*1020+i) XOR crc32(zero region) (u32 LE)
//   4080..4083  the page's own index p (a page written at the wrong place fails)
//   4084..4091  reserved, zero
//   4092..4095  CRC-32 of bytes 0..4091
// A page of all zeros is valid: a fresh secondary, each entry crc32 of a zero region
// (create makes the file sparse, so no page is written before its first send). The
// XOR makes the entry of a region never sent 0 in a written page too, so the bytes
// a batch does not change are the same in a fresh page and in its first written
// version (else a torn first write would leave zeros that read as wrong digests).
//
// Crash consistency. `writeRegions` writes the regions, then the touched pages,
// then syncs the image, then the table: a crash inside leaves each entry of the
// batch old, new or torn, and a touched page may fail its CRC. Every region of the
// batch is in C and counts as sent only when the call returns, so after the crash
// it is *pending* (in C, not sent since the open) and its entry is never checked;
// the cycle resends it, which rewrites the whole page with a fresh CRC. The bytes of
// a torn page that the batch did not change are the same in the old and the new
// page, so the entries of the page's other regions still hold. Hence: a page that
// fails its CRC and holds a pending region was torn by a crash, and its other
// entries are used as they are; a page that fails its CRC and holds no pending
// region is rot (E_CORRUPT). A rotten entry in a torn page shows up later as a
// mismatch of its region (never as silent acceptance).

import { assert } from './assert.ts';
import { crc32 } from './checksum.ts';
import { CowmapError } from './errors.ts';
import type { DigestPageProblem } from './replica.ts';
import type { FileHandle } from './storage.ts';

export const digestPageBytes = 4096;
export const entryBytes = 4;
export const entriesPerPage = 1020;
const pageOffsets = { pageIndex: 4080, checksum: 4092 } as const;

/** The size DIR2/digests has for `regions` regions: whole pages. */
export function digestTableSize(regions: number): number {
  return Math.ceil(regions / entriesPerPage) * digestPageBytes;
}

/**
 * The digest table's share of the I/O of one batch of transfers (writeRegions of
 * `regions`), for the benches that count bytes and calls: each touched page read
 * once and written once, one write per run of adjacent pages, one sync.
 */
export function digestBatchIo(regions: readonly number[]): {
  bytesRead: number;
  bytesWritten: number;
  writeCalls: number;
  syncCalls: number;
} {
  if (regions.length === 0) return { bytesRead: 0, bytesWritten: 0, writeCalls: 0, syncCalls: 0 };
  const pages = [...new Set(regions.map((region) => Math.floor(region / entriesPerPage)))].sort((a, b) => a - b);
  const runs = pages.filter((page, index) => index === 0 || page !== pages[index - 1]! + 1).length;
  const bytes = pages.length * digestPageBytes;
  return { bytesRead: bytes, bytesWritten: bytes, writeCalls: runs, syncCalls: 1 };
}

/** A page of the table as read, decoded. */
interface Page {
  bytes: Uint8Array;
  /** All zeros: never written, every entry is the zero region's CRC. */
  fresh: boolean;
  /** Fails its CRC (or names another page). */
  failing: boolean;
}

export class DigestTable {
  readonly file: FileHandle;
  readonly regions: number;
  /** crc32 of a region of zeros: the entry of a region never sent. */
  readonly zeroRegionCrc: number;
  /** Whether a region's entry may be stale (see the head of this file); set by the volume. */
  pending: (region: number) => boolean = () => false;
  /**
   * The last page read, as read: a scan region by region (scrub, a cycle's
   * verified reads) reads each page once instead of once per region. Dropped by
   * every write of the table; never edited in place (prepare copies).
   */
  private lastRead: { page: number; read: Page } | null = null;

  private constructor(file: FileHandle, regions: number, regionSize: number) {
    this.file = file;
    this.regions = regions;
    this.zeroRegionCrc = crc32(new Uint8Array(regionSize));
  }

  /** The table in `file`; E_CORRUPT when its size is not the geometry's. */
  static load(file: FileHandle, regions: number, regionSize: number): DigestTable {
    const expected = digestTableSize(regions);
    const actual = file.size();
    if (actual !== expected)
      throw new CowmapError('E_CORRUPT', `open: ${file.path} is ${actual} bytes, ${regions} regions need ${expected}`);
    return new DigestTable(file, regions, regionSize);
  }

  get pageCount(): number {
    return Math.ceil(this.regions / entriesPerPage);
  }

  pageOf(region: number): number {
    assert(
      Number.isInteger(region) && region >= 0 && region < this.regions,
      `digest of region ${region} of ${this.regions}`,
    );
    return Math.floor(region / entriesPerPage);
  }

  /** The regions whose entries page `page` holds: [first, end). */
  regionsOf(page: number): { first: number; end: number } {
    const first = page * entriesPerPage;
    return { first, end: Math.min(first + entriesPerPage, this.regions) };
  }

  /** Every page that is rotten (isRotten), as scrub reports it: the digest-page loop of every replica kind. */
  rottenPages(): DigestPageProblem[] {
    const problems: DigestPageProblem[] = [];
    for (let page = 0; page < this.pageCount; page++) {
      if (!this.isRotten(page)) continue;
      const { first, end } = this.regionsOf(page);
      problems.push({ page, offset: this.offsetOf(page), firstRegion: first, regionCount: end - first });
    }
    return problems;
  }

  /** True when the page fails its CRC and none of its regions is pending: rot, not a crash. */
  isRotten(page: number): boolean {
    return this.readPage(page).failing && !this.holdsPending(page);
  }

  /** The entry of `region`: E_CORRUPT naming the file, the page and the region when its page is rot. */
  entry(region: number, where = 'read'): number {
    const page = this.pageOf(region);
    const read = this.readPage(page);
    if (read.failing && !this.holdsPending(page)) throw this.rotError(page, region, where);
    return this.entryIn(read, region);
  }

  /**
   * Reads the pages holding the entries of `regions`, once each, for `update`:
   * E_CORRUPT, before anything is written, when one of them is rot.
   */
  prepare(regions: Iterable<number>, where: string): Map<number, Uint8Array> {
    const pages = new Map<number, Uint8Array>();
    for (const region of regions) {
      const page = this.pageOf(region);
      if (pages.has(page)) continue;
      const read = this.readPage(page);
      if (read.failing && !this.holdsPending(page)) throw this.rotError(page, region, where);
      pages.set(page, read.bytes.slice());
    }
    return pages;
  }

  /**
   * Sets the entries of `crcs` (region -> CRC-32) in the pages `prepare` read for
   * them and writes each page, whole, with a fresh CRC: one write per run of
   * adjacent pages. Not durable until `sync`.
   */
  update(pages: Map<number, Uint8Array>, crcs: ReadonlyMap<number, number>): void {
    for (const [region, crc] of crcs) {
      const bytes = pages.get(this.pageOf(region));
      assert(bytes !== undefined, `digest of region ${region} updated without its page`);
      new DataView(bytes.buffer, bytes.byteOffset).setUint32(
        (region % entriesPerPage) * entryBytes,
        this.stored(crc),
        true,
      );
    }
    this.writePages(pages);
  }

  /** Rewrites whole pages from the given entries (scrub --repair); not durable until `sync`. */
  rewritePages(pages: readonly number[], entryOf: (region: number) => number): void {
    const written = new Map<number, Uint8Array>();
    for (const page of pages) {
      assert(page >= 0 && page < this.pageCount, `digest page ${page} of ${this.pageCount}`);
      const bytes = new Uint8Array(digestPageBytes);
      const view = new DataView(bytes.buffer);
      const { first, end } = this.regionsOf(page);
      for (let region = first; region < end; region++)
        view.setUint32((region - first) * entryBytes, this.stored(entryOf(region)), true);
      written.set(page, bytes);
    }
    this.writePages(written);
  }

  sync(): void {
    this.file.sync();
  }

  /** Byte offset of a page in the file. */
  offsetOf(page: number): number {
    return page * digestPageBytes;
  }

  private readPage(page: number): Page {
    if (this.lastRead !== null && this.lastRead.page === page) return this.lastRead.read;
    const read = this.decodePage(page);
    this.lastRead = { page, read };
    return read;
  }

  private decodePage(page: number): Page {
    // A copy: a storage may hand out a view of its own bytes.
    const bytes = this.file.read(this.offsetOf(page), digestPageBytes).slice();
    assert(bytes.length === digestPageBytes, `short read of page ${page} of ${this.file.path}`);
    if (bytes.every((byte) => byte === 0)) return { bytes, fresh: true, failing: false };
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const failing =
      view.getUint32(pageOffsets.checksum, true) !== crc32(bytes.subarray(0, pageOffsets.checksum)) ||
      view.getUint32(pageOffsets.pageIndex, true) !== page;
    return { bytes, fresh: false, failing };
  }

  /** A region's CRC-32 as its entry holds it (see the head of this file). */
  private stored(crc: number): number {
    return (crc ^ this.zeroRegionCrc) >>> 0;
  }

  private entryIn(read: Page, region: number): number {
    const index = region % entriesPerPage;
    return (
      (new DataView(read.bytes.buffer, read.bytes.byteOffset).getUint32(index * entryBytes, true) ^
        this.zeroRegionCrc) >>>
      0
    );
  }

  private holdsPending(page: number): boolean {
    const { first, end } = this.regionsOf(page);
    for (let region = first; region < end; region++) if (this.pending(region)) return true;
    return false;
  }

  private rotError(page: number, region: number, where: string): CowmapError {
    return new CowmapError(
      'E_CORRUPT',
      `${where}: ${this.file.path} offset ${this.offsetOf(page)} region ${region}: page ${page} of the ` +
        `digest table fails its CRC-32 and holds no region of the running cycle left to send (rot)`,
    );
  }

  /** Stamps each page (index, CRC) and writes runs of adjacent pages, one write per run. */
  private writePages(pages: ReadonlyMap<number, Uint8Array>): void {
    this.lastRead = null;
    const order = [...pages.keys()].sort((a, b) => a - b);
    for (let start = 0; start < order.length; ) {
      let end = start + 1;
      while (end < order.length && order[end] === order[end - 1]! + 1) end++;
      const run = new Uint8Array((end - start) * digestPageBytes);
      for (let i = start; i < end; i++) {
        const bytes = pages.get(order[i]!)!;
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        view.setUint32(pageOffsets.pageIndex, order[i]!, true);
        bytes.fill(0, pageOffsets.pageIndex + 4, pageOffsets.checksum);
        view.setUint32(pageOffsets.checksum, crc32(bytes.subarray(0, pageOffsets.checksum)), true);
        run.set(bytes, (i - start) * digestPageBytes);
      }
      this.file.write(this.offsetOf(order[start]!), run);
      start = end;
    }
  }
}
