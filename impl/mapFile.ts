// A change map on disk (DIR/map0 or DIR/map1): one bit per region, in checksummed
// pages of 4096 bytes (impl/mapPage.ts; docs/format.md, "DIR/map0, DIR/map1").
// The metadata says which file is the current map C and which the next map X;
// the roles flip at the swap without touching either file (impl/metadata.ts).
// Every write rewrites whole pages with a fresh CRC and the metadata sequence in
// force (the volume hands in a getter), so a later metadata record that rot took
// away leaves evidence behind (the evidence rule, docs/format.md "Recovery").
//
// The in-memory bits mirror what is durable (once the call that set them has
// returned; a failed call poisons the volume), with one exception: a bit set by
// `setDeferred` is only in memory until `flush` writes its page and syncs. The
// volume uses it only for a next bit that a durable COW entry already implies
// (recovery rebuilds it from the entry), and flushes before that entry goes stale.
//
// load does not judge a page that fails its CRC: whether its bits can be kept
// needs the other map, W and the secondary's digests, so recovery decides
// (impl/recoveryChecks.ts) and a read-write open rewrites the page.

import { assert } from './assert.ts';
import { Bitmap } from './bitmap.ts';
import { isAllZero } from './checksum.ts';
import { CowmapError } from './errors.ts';
import { mapSize } from './geometry.ts';
import {
  checkPage,
  encodePage,
  mapFileSize,
  mapPageCount,
  pageBitBytes,
  pageBytes,
  regionsPerPage,
} from './mapPage.ts';
import type { ScrubFinding } from './scrubFinding.ts';
import type { FileHandle } from './storage.ts';

export { mapFileSize } from './mapPage.ts';

/** The bits of the last map byte that belong to regions. */
function paddingMask(regions: number): number {
  const used = regions & 7;
  return used === 0 ? 0xff : (1 << used) - 1;
}

export class MapFile {
  readonly file: FileHandle;
  readonly bits: Bitmap;
  readonly pageCount: number;
  /** The pages holding bits set by setDeferred and not yet flushed. */
  private readonly deferredPages: Bitmap;
  /** Pages that failed their check at load and were not rewritten since, with why. */
  private readonly failed = new Map<number, string>();
  /** The greatest stamp of a valid page at load (0 when none was ever written). */
  readonly loadedStampMax: number;
  private sequenceOf: (() => number) | null = null;

  private constructor(file: FileHandle, bits: Bitmap, failed: Map<number, string>, loadedStampMax: number) {
    this.file = file;
    this.bits = bits;
    this.pageCount = mapPageCount(bits.regions);
    this.deferredPages = new Bitmap(this.pageCount);
    for (const [page, problem] of failed) this.failed.set(page, problem);
    this.loadedStampMax = loadedStampMax;
  }

  /**
   * Reads the whole map; E_CORRUPT when its size is wrong or bits past the last
   * region are set. Pages failing their CRC are loaded as they are and listed in
   * `failedPages` for recovery to judge.
   */
  static load(file: FileHandle, regions: number): MapFile {
    const sizeBytes = mapFileSize(regions);
    const actual = file.size();
    if (actual !== sizeBytes) {
      throw new CowmapError('E_CORRUPT', `open: ${file.path} is ${actual} bytes, ${regions} regions need ${sizeBytes}`);
    }
    const raw = file.read(0, sizeBytes);
    const bytes = new Uint8Array(mapSize(regions));
    const failed = new Map<number, string>();
    let stampMax = 0;
    for (let page = 0; page < mapPageCount(regions); page++) {
      const pageData = raw.subarray(page * pageBytes, (page + 1) * pageBytes);
      const check = checkPage(pageData);
      const first = page * pageBitBytes;
      const end = Math.min(first + pageBitBytes, bytes.length);
      bytes.set(pageData.subarray(0, end - first), first);
      const paddingClear =
        isAllZero(pageData.subarray(end - first, pageBitBytes)) &&
        (end < bytes.length || Bitmap.paddingClear(regions, bytes));
      if (check.valid && !paddingClear) {
        // Under a valid CRC: not a torn page, a map of another geometry.
        throw new CowmapError('E_CORRUPT', `open: ${file.path} page ${page} has bits set past region ${regions - 1}`);
      }
      if (check.valid) {
        stampMax = Math.max(stampMax, check.stamp);
      } else {
        // A page failing its CRC is judged region by region at recovery; bits past
        // the last region in it are rot of no region's bit, dropped in memory (a
        // rewrite of the page clears them on disk).
        failed.set(page, check.problem);
        if (end === bytes.length) bytes[end - 1]! &= paddingMask(regions);
      }
    }
    return new MapFile(file, new Bitmap(regions, bytes), failed, stampMax);
  }

  /** Where the metadata sequence that stamps every page written comes from (the volume's metadata). */
  stampWith(sequenceOf: () => number): void {
    this.sequenceOf = sequenceOf;
  }

  has(region: number): boolean {
    return this.bits.has(region);
  }

  isClear(): boolean {
    return this.bits.isClear();
  }

  /** True while bits set by setDeferred are only in memory. */
  get hasDeferred(): boolean {
    return !this.deferredPages.isClear();
  }

  /** The pages that failed their check at load and were not rewritten since, ascending. */
  failedPages(): { page: number; problem: string }[] {
    return [...this.failed.entries()].sort((a, b) => a[0] - b[0]).map(([page, problem]) => ({ page, problem }));
  }

  /** The regions [first, end) whose bits page `page` holds. */
  regionsOfPage(page: number): { first: number; end: number } {
    assert(Number.isInteger(page) && page >= 0 && page < this.pageCount, `map page ${page} of ${this.pageCount}`);
    return { first: page * regionsPerPage, end: Math.min((page + 1) * regionsPerPage, this.bits.regions) };
  }

  /**
   * Sets one bit durably: its page rewritten (with any deferred bits it holds), then
   * the file synced (2 durable calls). No I/O when the bit is set.
   */
  set(region: number): void {
    if (this.bits.has(region)) return;
    this.bits.set(region);
    const page = Math.floor(region / regionsPerPage);
    this.file.write(page * pageBytes, this.encode(page));
    this.file.sync();
    this.failed.delete(page);
    this.deferredPages.clear(page);
  }

  /**
   * Sets one bit in memory only, no I/O: for a bit that another durable record
   * implies until `flush`. No effect when the bit is set.
   */
  setDeferred(region: number): void {
    if (this.bits.has(region)) return;
    this.bits.set(region);
    this.deferredPages.set(Math.floor(region / regionsPerPage));
  }

  /**
   * Makes the deferred bits durable: the pages holding them rewritten, one write
   * per run of adjacent pages, then one sync. No I/O when none is deferred.
   */
  flush(): void {
    if (this.deferredPages.isClear()) return;
    this.writeRuns(
      (page) => this.deferredPages.has(page),
      (page) => this.encode(page),
    );
    this.file.sync();
    this.deferredPages.clearAll();
  }

  /**
   * Clears every bit durably, rewriting the pages that have bits set or failed
   * their check (nothing else: a cycle touches only the pages of its regions), then
   * one sync. A clear map costs no I/O.
   */
  clearAll(): void {
    assert(this.deferredPages.isClear(), 'clearing a map with deferred bits');
    const dirty = new Bitmap(this.pageCount);
    const bytes = this.bits.bytes;
    for (let page = 0; page < this.pageCount; page++) {
      if (
        this.failed.has(page) ||
        !isAllZero(bytes.subarray(page * pageBitBytes, Math.min((page + 1) * pageBitBytes, bytes.length)))
      )
        dirty.set(page);
    }
    this.bits.clearAll();
    const writeCount = this.writeRuns(
      (page) => dirty.has(page),
      (page) => this.encode(page),
    );
    if (writeCount > 0) this.file.sync();
    this.failed.clear();
  }

  /** Clears every bit in memory only: recovery of a read-only open (nothing written). */
  clearInMemory(): void {
    assert(this.deferredPages.isClear(), 'clearing a map with deferred bits');
    this.bits.clearAll();
  }

  /**
   * Rewrites page `page` from the bits in memory with a fresh CRC and stamp, then
   * syncs: recovery's cleanup of a torn page whose bits it kept, and scrub
   * --repair's. Deferred bits of the page become durable with it (an X bit durable
   * early is always safe).
   */
  rewritePage(page: number): void {
    this.file.write(page * pageBytes, this.encode(page));
    this.file.sync();
    this.failed.delete(page);
    this.deferredPages.clear(page);
  }

  /**
   * Sets the bits of `regions` durably with one write per run of touched pages and
   * ONE sync (scrub --repair marks many regions at once). No I/O when all are set.
   */
  setMany(regions: readonly number[]): void {
    const touched = new Bitmap(this.pageCount);
    for (const region of regions) {
      if (this.bits.has(region)) continue;
      this.bits.set(region);
      touched.set(Math.floor(region / regionsPerPage));
    }
    if (touched.isClear()) return;
    this.writeRuns(
      (page) => touched.has(page),
      (page) => this.encode(page),
    );
    this.file.sync();
    for (const page of touched.regionsSet()) {
      this.failed.delete(page);
      this.deferredPages.clear(page);
    }
  }

  /** Reads every page again (docs/format.md, "Scrub"): each page failing its check is a finding. */
  scrub(): ScrubFinding[] {
    const findings: ScrubFinding[] = [];
    for (let page = 0; page < this.pageCount; page++) {
      const check = checkPage(this.file.read(page * pageBytes, pageBytes));
      if (check.valid) continue;
      const { first, end } = this.regionsOfPage(page);
      findings.push({
        file: this.file.path,
        offset: page * pageBytes,
        region: first,
        problem: `map page ${page} (regions ${first}..${end - 1}) ${check.problem}`,
        repaired: false,
      });
    }
    return findings;
  }

  /** Page `page` as it must be on disk now: the bits in memory, the current metadata sequence, the CRC. */
  private encode(page: number): Uint8Array {
    assert(this.sequenceOf !== null, `${this.file.path}: a map write before the volume gave its metadata sequence`);
    const first = page * pageBitBytes;
    return encodePage(
      this.bits.bytes.subarray(first, Math.min(first + pageBitBytes, this.bits.bytes.length)),
      this.sequenceOf(),
    );
  }

  /** Writes the pages of each run of adjacent marked pages with one pwrite; returns the number of writes. */
  private writeRuns(marked: (page: number) => boolean, pageOf: (page: number) => Uint8Array): number {
    let writeCount = 0;
    for (let start = 0; start < this.pageCount; ) {
      if (!marked(start)) {
        start++;
        continue;
      }
      let end = start + 1;
      while (end < this.pageCount && marked(end)) end++;
      const run = new Uint8Array((end - start) * pageBytes);
      for (let page = start; page < end; page++) run.set(pageOf(page), (page - start) * pageBytes);
      this.file.write(start * pageBytes, run);
      writeCount++;
      start = end;
    }
    return writeCount;
  }
}
