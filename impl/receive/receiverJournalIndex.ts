// The in-memory index of a receiver's journal (impl/receive/receiverJournal.ts): for
// each byte of the export that the running cycle wrote, where its latest bytes are.
// Extents are disjoint and sorted by offset; a later write cuts the extents it
// overlaps, so the index always says what the newest write left, byte for byte, and
// readLatest needs no replay. Its size is bounded by `extentsMax` (the store refuses
// a write that would pass it): each write adds at most two extents (itself and the
// right part of one it splits), and the compaction of the journal writes each run of
// adjacent extents as one record, after which the index holds one extent per run.
// A zero range that continues the last extent's zeros extends it instead: a claim's
// WRITE_ZEROES over the whole image comes in one chunk per batch (1 MiB), and one
// extent per chunk would fill the bound at 1 TiB.

import { assert } from '../assert.ts';

/** Where an extent's bytes are: a byte offset of its data in the journal file, or zeros. */
export const zeroSource = -1;

export interface JournalExtent {
  /** Byte offset in the export. */
  readonly offset: number;
  readonly length: number;
  /** Byte offset in the journal file of the extent's first byte, or `zeroSource`. */
  readonly source: number;
}

export class JournalIndex {
  // Parallel arrays: a few million extents stay small and binary search is cheap.
  private starts: number[] = [];
  private ends: number[] = [];
  private sources: number[] = [];
  private coveredBytes = 0;

  get count(): number {
    return this.starts.length;
  }

  /** The bytes the extents cover (each byte once). */
  get liveBytes(): number {
    return this.coveredBytes;
  }

  clear(): void {
    this.starts = [];
    this.ends = [];
    this.sources = [];
    this.coveredBytes = 0;
  }

  /** The extents [offset, offset + length) now come from `source` (a journal offset or zeroSource). */
  set(offset: number, length: number, source: number): void {
    assert(
      Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length),
      `index set ${offset}+${length}`,
    );
    if (length === 0) return;
    const end = offset + length;
    const count = this.starts.length;
    // The common case, a write past every extent (a cycle's regions go out in order).
    if (count === 0 || this.ends[count - 1]! <= offset) {
      this.push(offset, end, source);
      return;
    }
    const first = this.firstEndingAfter(offset);
    let last = first;
    while (last < count && this.starts[last]! < end) last++;
    const replacement: [number, number, number][] = [];
    if (first < last && this.starts[first]! < offset)
      replacement.push([this.starts[first]!, offset, this.sources[first]!]);
    replacement.push([offset, end, source]);
    if (first < last && this.ends[last - 1]! > end) {
      const cut = last - 1;
      const shifted = this.sources[cut] === zeroSource ? zeroSource : this.sources[cut]! + (end - this.starts[cut]!);
      replacement.push([end, this.ends[cut]!, shifted]);
    }
    for (let i = first; i < last; i++) this.coveredBytes -= this.ends[i]! - this.starts[i]!;
    for (const [start, stop] of replacement) this.coveredBytes += stop - start;
    this.starts.splice(first, last - first, ...replacement.map((extent) => extent[0]));
    this.ends.splice(first, last - first, ...replacement.map((extent) => extent[1]));
    this.sources.splice(first, last - first, ...replacement.map((extent) => extent[2]));
  }

  /** The extents that meet [offset, offset + length), clipped to it, in offset order. */
  *within(offset: number, length: number): Generator<JournalExtent> {
    const end = offset + length;
    for (let i = this.firstEndingAfter(offset); i < this.starts.length && this.starts[i]! < end; i++) {
      const start = Math.max(this.starts[i]!, offset);
      const stop = Math.min(this.ends[i]!, end);
      const source = this.sources[i] === zeroSource ? zeroSource : this.sources[i]! + (start - this.starts[i]!);
      yield { offset: start, length: stop - start, source };
    }
  }

  /** Every extent, in offset order. */
  *all(): Generator<JournalExtent> {
    for (let i = 0; i < this.starts.length; i++)
      yield { offset: this.starts[i]!, length: this.ends[i]! - this.starts[i]!, source: this.sources[i]! };
  }

  private push(start: number, end: number, source: number): void {
    const last = this.starts.length - 1;
    if (source === zeroSource && last >= 0 && this.sources[last] === zeroSource && this.ends[last] === start) {
      this.ends[last] = end;
      this.coveredBytes += end - start;
      return;
    }
    this.starts.push(start);
    this.ends.push(end);
    this.sources.push(source);
    this.coveredBytes += end - start;
  }

  /** The index of the first extent whose end is past `offset` (ends are sorted: the extents are disjoint). */
  private firstEndingAfter(offset: number): number {
    let low = 0;
    let high = this.ends.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.ends[middle]! <= offset) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
