// The reads and bulk moves of a receiver's journal: a read of the image with the
// journal over it, and the two bulk moves, both driven by its index (the newest
// bytes of each extent, so a byte the cycle wrote twice is copied once):
// applying a committed journal to the image, and compacting a journal into the
// other journal file when it outgrows its bound. Both read the journal and write
// big sequential runs; neither syncs (the store orders the syncs, receiverStore.ts).

import type { FileHandle } from '../storage.ts';
import { ReceiverJournal, recordDataMax } from './receiverJournal.ts';
import { type JournalExtent, zeroSource } from './receiverJournalIndex.ts';

/** Bytes gathered into one write of the image; also the size of the zero buffer. */
const applyChunkBytes = 4 * 1024 * 1024;
let zeroChunk: Uint8Array | null = null;

function zeros(length: number): Uint8Array {
  zeroChunk ??= new Uint8Array(applyChunkBytes);
  return zeroChunk.subarray(0, length);
}

/**
 * Runs of extents adjacent in the export and of one kind (data or zeros), each at
 * most `bytesMax` (`zeroBytesMax` for zeros).
 */
function* runs(
  extents: Iterable<JournalExtent>,
  bytesMax: number,
  zeroBytesMax = bytesMax,
): Generator<JournalExtent[]> {
  let run: JournalExtent[] = [];
  let runBytes = 0;
  for (const extent of extents) {
    const pieceMax = extent.source === zeroSource ? zeroBytesMax : bytesMax;
    // An extent longer than a run is cut into pieces of at most pieceMax.
    for (let done = 0; done < extent.length; done += pieceMax) {
      const length = Math.min(pieceMax, extent.length - done);
      const piece: JournalExtent = {
        offset: extent.offset + done,
        length,
        source: extent.source === zeroSource ? zeroSource : extent.source + done,
      };
      const last = run.at(-1);
      const joins =
        last !== undefined &&
        last.offset + last.length === piece.offset &&
        (last.source === zeroSource) === (piece.source === zeroSource) &&
        runBytes + length <= pieceMax;
      if (!joins && run.length > 0) {
        yield run;
        run = [];
        runBytes = 0;
      }
      run.push(piece);
      runBytes += length;
    }
  }
  if (run.length > 0) yield run;
}

/** The bytes of a run of data extents, in one buffer. */
function runBytesOf(journal: ReceiverJournal, run: readonly JournalExtent[]): Uint8Array {
  if (run.length === 1) return journal.read(run[0]!.source, run[0]!.length);
  const total = run.reduce((sum, extent) => sum + extent.length, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const extent of run) {
    bytes.set(journal.read(extent.source, extent.length), at);
    at += extent.length;
  }
  return bytes;
}

/**
 * Writes every extent of the journal to the image at its offset (not synced).
 * Idempotent: the same bytes to the same places, so recovery may run it again
 * after a crash inside it. Zero extents are skipped on a fresh image (all zeros
 * since create, and no other extent of this journal overlaps them).
 */
export function applyJournal(journal: ReceiverJournal, image: FileHandle, imageFresh: boolean): void {
  for (const run of runs(journal.index.all(), applyChunkBytes)) {
    const offset = run[0]!.offset;
    if (run[0]!.source !== zeroSource) {
      image.write(offset, runBytesOf(journal, run));
      continue;
    }
    if (imageFresh) continue;
    const length = run.reduce((sum, extent) => sum + extent.length, 0);
    image.write(offset, zeros(length));
  }
}

/**
 * A journal of `epoch` in `target` holding what `journal` holds, one record per run
 * of adjacent extents (not synced): the live bytes of the cycle, at most the export
 * once, plus a header per run.
 */
export function compactJournal(journal: ReceiverJournal, target: FileHandle, epoch: number): ReceiverJournal {
  const compacted = ReceiverJournal.restart(target, epoch);
  // A zero record carries no data (recordDataMax bounds what recovery reads in one
  // buffer): a run of zeros of any length is one record, so one extent after compaction.
  for (const run of runs(journal.index.all(), recordDataMax, Number.MAX_SAFE_INTEGER)) {
    const offset = run[0]!.offset;
    if (run[0]!.source === zeroSource) {
      compacted.appendZeros(
        offset,
        run.reduce((sum, extent) => sum + extent.length, 0),
      );
    } else {
      compacted.appendData(offset, runBytesOf(journal, run));
    }
  }
  return compacted;
}

/** `bytes` (the image at `offset`) with the journal's extents over it: a copy when any meets it. */
export function overlay(bytes: Uint8Array, offset: number, journal: ReceiverJournal): Uint8Array {
  let out: Uint8Array | null = null;
  for (const extent of journal.index.within(offset, bytes.length)) {
    out ??= bytes.slice();
    const at = extent.offset - offset;
    if (extent.source === zeroSource) out.fill(0, at, at + extent.length);
    else out.set(journal.read(extent.source, extent.length), at);
  }
  return out ?? bytes;
}
