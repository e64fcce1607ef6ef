// The receiver's store: a secondary that applies each cycle atomically (docs/protocol.md
// section 10, INV-DR). `cowmap receive` serves it over NBD and ReceiverReplica
// (the `consistent:` secondary) drives it in process; both speak to it as a primary
// speaks to any NBD export: writes of the image, writes of the control block at the
// end of the export (impl/remote/controlBlock.ts), flushes. Byte layout:
// docs/format.md, "The receiver's files".
//
// THE CRASH MODEL OF THE RECEIVER (docs/protocol.md section 5 for the device)
//
// Files: DIR2/receiver (the state, two checksummed slots, receiverState.ts), DIR2/image
// (the consistent image: exportSize bytes, the control region included), and the
// journal of the running cycle (DIR2/journal0 or journal1, the state says which and
// its epoch; receiverJournal.ts).
//
// What is durable when:
//   - A write or write-zeroes of the image is a journal record, appended and not
//     synced: the reply may come before it is durable. The image is never touched.
//   - flush() syncs the journal: every record before it is durable when it returns.
//   - A `sending N` control block when no journal of N is open starts cycle N: ONE
//     state update (a slot write and its sync) records the new journal (epoch + 1,
//     cycle N), which drops an uncommitted journal of another cycle (the primary
//     never completed it) and adopts the volume's identity from the first block.
//     The block itself is then a record of the journal (readLatest returns it).
//   - A `complete N` control block with the journal of N open commits N: the block
//     is appended, the journal synced, then THE commit: ONE state update naming the
//     journal's length as committed, with the completed cycle and its swap time.
//     Before that sync returns the consistent image is cycle N - 1's; after it, N's.
//     Then the journal is applied to the image (receiverApply.ts), the image synced,
//     and a state update closes the journal. The complete signal is durable before
//     the write that carried it returns, so a flush after it has nothing left to do.
// What recovery (open) does, after syncing every file it reads:
//   - a committed journal: scanned up to its committed length (every record of it
//     must hold: it was synced before the commit; E_CORRUPT otherwise), applied
//     again (idempotent), the image synced, the journal closed;
//   - an open, uncommitted journal: kept (the primary resends only what no FLUSH
//     covered): scanned to the first record that fails (a tail no sync covered),
//     the file cut there and synced, so that no record past it counts later;
//   - no journal: nothing.
// A read-only open writes nothing: it reads a committed journal not yet applied as
// an overlay of the image instead.
//
// Bounds: the journal holds at most journalBytesMax bytes (default twice the export
// plus 64 MiB). A primary that rewrites a byte within a cycle (a batch resent after
// a fault) appends it again; the index points at the newest copy. When the next
// record would pass the bound, the journal is compacted into the other file (one
// record per run of live extents: at most the export once, plus headers) and a
// state update switches to it. The index holds at most extentsMax extents (default
// 2^20, about 50 MiB of memory); a write past either bound after compaction is
// refused (E_IO) and changes nothing.

import { assert } from '../assert.ts';
import { CowmapError, isStorageError } from '../errors.ts';
import { type ControlBlock, controlBlockSize } from '../remote/controlBlock.ts';
import type { FileHandle, Lock, Storage } from '../storage.ts';
import { applyJournal, compactJournal, overlay } from './receiverApply.ts';
import { closeQuietly } from '../createdFiles.ts';
import { createReceiverFiles, openReceiverFiles, type ReceiverFiles } from './receiverFiles.ts';
import { ReceiverJournal, recordDataMax, recordHeaderSize } from './receiverJournal.ts';
import type { ReceiverState, ReceiverStateFile } from './receiverState.ts';
import { checkBlockIdentity, controlBlockOf } from './receiverSignal.ts';
import type { ReceiverStatus } from './receiverStatus.ts';

export interface ReceiverStoreOptions {
  /** O_RDONLY files, a shared lock, nothing written or synced (`cowmap read DIR2 --consistent`). */
  readonly readOnly?: boolean;
  /** The journal's bound in bytes (see the head of this file); tests set a small one. */
  readonly journalBytesMax?: number;
  /** The index's bound in extents. */
  readonly extentsMax?: number;
}

const journalSlackBytes = 64 * 1024 * 1024;
const extentsMaxDefault = 1 << 20;

export class ReceiverStore {
  readonly dir: string;
  readonly exportSize: number;
  readonly readOnly: boolean;
  protected readonly state: ReceiverStateFile;
  protected readonly image: FileHandle;
  protected readonly journalFiles: readonly [FileHandle, FileHandle];
  private readonly lock: Lock;
  private readonly journalBytesMax: number;
  private readonly extentsMax: number;
  /** The open, uncommitted journal of the running cycle, or null. */
  protected journal: ReceiverJournal | null = null;
  /** Read-only open only: a committed journal recovery would apply, read over the image. */
  private committedOverlay: ReceiverJournal | null = null;
  private closed = false;
  /** The storage error that stopped the store, or null. */
  private failure: Error | null = null;

  // Protected, not private: the crash exploration plants bugs in subclasses (harness/crash/receiverCrashes.test.ts).
  protected constructor(dir: string, files: ReceiverFiles, options: ReceiverStoreOptions) {
    this.dir = dir;
    this.state = files.state;
    this.image = files.image;
    this.journalFiles = files.journals;
    this.lock = files.lock;
    this.exportSize = files.state.state.exportSize;
    this.readOnly = options.readOnly === true;
    this.journalBytesMax = options.journalBytesMax ?? 2 * this.exportSize + journalSlackBytes;
    this.extentsMax = options.extentsMax ?? extentsMaxDefault;
  }

  /** A new, empty store in `dir` (made if missing): no identity, no cycle; E_EXISTS when DIR2 holds a secondary. */
  static create(storage: Storage, dir: string, exportSize: number, options: ReceiverStoreOptions = {}): ReceiverStore {
    if (!Number.isSafeInteger(exportSize) || exportSize <= controlBlockSize)
      throw new CowmapError(
        'E_BAD_REQUEST',
        `create: export size ${exportSize}: an image and a ${controlBlockSize}-byte control block`,
      );
    const files = createReceiverFiles(storage, dir, {
      sequence: 1,
      exportSize,
      identity: null,
      completedCycle: null,
      completedSwapTimeMs: 0,
      imageFresh: true,
      journal: { epoch: 0, file: 0, cycle: null, committedBytes: null },
    });
    return new this(dir, files, { ...options, readOnly: false });
  }

  /** Opens the store in `dir` and recovers it (see the head of this file); E_NOT_FOUND when there is none, E_CORRUPT when damaged. */
  static open(storage: Storage, dir: string, options: ReceiverStoreOptions = {}): ReceiverStore {
    const files = openReceiverFiles(storage, dir, options.readOnly === true);
    const store = new this(dir, files, options);
    try {
      store.recover();
    } catch (error) {
      store.closeFiles();
      throw error;
    }
    return store;
  }

  private get controlOffset(): number {
    return this.exportSize - controlBlockSize;
  }

  /** An NBD WRITE: a control block is a signal; image bytes go to the running cycle's journal (E_BAD_REQUEST without one). */
  write(offset: number, bytes: Uint8Array): void {
    this.checkWritable('write', offset, bytes.length);
    this.guarded('write', () => {
      if (offset + bytes.length > this.controlOffset) this.signal(offset, bytes);
      else this.runningJournal('write', offset, bytes.length).appendData(offset, bytes);
    });
  }

  /** An NBD WRITE_ZEROES (or TRIM) of the image: a record of zeros in the running cycle's journal. */
  writeZeroes(offset: number, length: number): void {
    this.checkWritable('write zeroes', offset, length);
    if (offset + length > this.controlOffset)
      throw new CowmapError('E_BAD_REQUEST', `write zeroes at ${offset}: the control region takes only control blocks`);
    this.guarded('write zeroes', () => this.runningJournal('write zeroes', offset, 0).appendZeros(offset, length));
  }

  /** An NBD FLUSH: every write before it is durable when it returns. */
  flush(): void {
    assert(!this.closed, 'flush of a closed receiver store');
    if (this.readOnly) return;
    this.checkUsable('flush');
    this.guarded('flush', () => this.journal?.sync());
  }

  /** What an NBD READ returns: the image with the running cycle's writes over it, byte for byte. */
  readLatest(offset: number, length: number): Uint8Array {
    const bytes = this.readConsistent(offset, length);
    return this.journal === null ? bytes : overlay(bytes, offset, this.journal);
  }

  /** The consistent image: P@swap of the last completed cycle (INV-DR), the control region as that cycle's complete block. */
  readConsistent(offset: number, length: number): Uint8Array {
    assert(!this.closed, 'read of a closed receiver store');
    this.checkRange('read', offset, length);
    const bytes = this.image.read(offset, length);
    return this.committedOverlay === null ? bytes : overlay(bytes, offset, this.committedOverlay);
  }

  status(): ReceiverStatus {
    const state = this.state.state;
    const committed = this.committedOverlay !== null;
    return {
      exportSize: this.exportSize,
      identity: state.identity,
      completedCycle: state.completedCycle,
      completedSwapTimeMs: state.completedSwapTimeMs,
      runningCycle: committed ? null : state.journal.cycle,
      journalBytes: this.journal?.tail ?? 0,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closeFiles();
  }

  private closeFiles(): void {
    this.closed = true;
    for (const file of [this.image, ...this.journalFiles, this.state.file]) closeQuietly(file);
    this.lock.release();
  }

  protected recover(): void {
    const { journal } = this.state.state;
    if (journal.cycle === null) return;
    const file = this.journalFiles[journal.file];
    if (journal.committedBytes !== null) {
      const { journal: committed, end } = ReceiverJournal.scan(file, journal.epoch, journal.committedBytes);
      if (end.problem !== null || end.tail !== journal.committedBytes)
        throw new CowmapError(
          'E_CORRUPT',
          `open: ${file.path}: the committed journal of cycle ${journal.cycle} is damaged: ${end.problem ?? 'short'}`,
        );
      if (this.readOnly) this.committedOverlay = committed;
      else this.applyCommitted(committed);
      return;
    }
    const { journal: running } = ReceiverJournal.scan(file, journal.epoch, null);
    if (!this.readOnly) running.cutAtTail();
    this.journal = running;
  }

  private checkRange(what: string, offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
      throw new CowmapError('E_RANGE', `${what} at ${offset} of ${length} bytes`);
    if (offset + length > this.exportSize)
      throw new CowmapError('E_RANGE', `${what} at ${offset} of ${length} bytes: past the export's ${this.exportSize}`);
  }

  private checkWritable(what: string, offset: number, length: number): void {
    assert(!this.closed, `${what} to a closed receiver store`);
    if (this.readOnly) throw new CowmapError('E_BAD_REQUEST', `${what}: the receiver's store is open read-only`);
    this.checkUsable(what);
    this.checkRange(what, offset, length);
  }

  /** After a storage call failed, the files may be half way through a step: only a reopen (recovery) goes on. */
  private checkUsable(what: string): void {
    if (this.failure !== null)
      throw new CowmapError('E_IO', `${what}: an earlier storage call of the receiver failed; reopen it to recover`, {
        cause: this.failure,
      });
  }

  /** Runs a step; a storage error becomes E_IO and stops the store (checkUsable). */
  private guarded(what: string, step: () => void): void {
    try {
      step();
    } catch (error) {
      if (!isStorageError(error)) throw error;
      this.failure = error;
      throw new CowmapError('E_IO', `${what}: ${error.message}`, { cause: error });
    }
  }

  /** The running cycle's journal, with room for a record at `offset` (compacted if need be); E_BAD_REQUEST without one. */
  private runningJournal(what: string, offset: number, dataBytes: number): ReceiverJournal {
    if (this.journal === null)
      throw new CowmapError(
        'E_BAD_REQUEST',
        `${what} at ${offset}: no cycle is open (every write of the image belongs to a cycle that a control block started)`,
      );
    const fits = (journal: ReceiverJournal): boolean =>
      journal.tail + recordHeaderSize * Math.ceil(dataBytes / recordDataMax + 1) + dataBytes <= this.journalBytesMax &&
      journal.index.count + 2 <= this.extentsMax;
    if (!fits(this.journal)) this.compact();
    if (!fits(this.journal))
      throw new CowmapError(
        'E_IO',
        `${what} at ${offset}: the journal of cycle ${this.state.state.journal.cycle} is full after compaction ` +
          `(${this.journal.tail} bytes of ${this.journalBytesMax}, ${this.journal.index.count} extents of ${this.extentsMax})`,
      );
    return this.journal;
  }

  /** The journal rewritten into the other file, synced, then ONE state update switches to it. */
  protected compact(): void {
    assert(this.journal !== null, 'compaction without a journal');
    const current = this.state.state.journal;
    const other = current.file === 0 ? 1 : 0;
    const epoch = current.epoch + 1;
    const compacted = compactJournal(this.journal, this.journalFiles[other], epoch);
    compacted.sync();
    this.state.update({ journal: { ...current, epoch, file: other } });
    this.journal = compacted;
    this.journalFiles[current.file].truncate(0);
  }

  /** A write that reaches the control region: a start or complete signal (receiverSignal.ts). */
  private signal(offset: number, bytes: Uint8Array): void {
    const block = controlBlockOf(offset, bytes, this.controlOffset);
    checkBlockIdentity(block, this.state.state.identity, this.exportSize);
    if (block.state === 'sending') this.startOrContinue(block, bytes);
    else this.complete(block, bytes);
  }

  /**
   * `sending N`: a record of the open journal of N, or the start of a journal for N (one
   * durable state update). Refused below the open journal's cycle: the primary starts a
   * cycle only after the previous one completed, so such a block is a stale write of an
   * earlier connection, and restarting would drop batches the primary saw confirmed.
   * N equal to the last commit with no journal open is taken: a confirmation retried on
   * a new connection (its reply was lost) sends the start block again, then the complete.
   */
  private startOrContinue(block: ControlBlock, bytes: Uint8Array): void {
    const state = this.state.state;
    if (this.journal === null || state.journal.cycle !== block.cycle) {
      if (state.completedCycle !== null && block.cycle < state.completedCycle)
        throw new CowmapError(
          'E_BAD_REQUEST',
          `start of cycle ${block.cycle}: cycle ${state.completedCycle} is committed already (a stale primary?)`,
        );
      if (this.journal !== null && state.journal.cycle !== null && block.cycle < state.journal.cycle)
        throw new CowmapError(
          'E_BAD_REQUEST',
          `start of cycle ${block.cycle}: the journal of cycle ${state.journal.cycle} is open ` +
            '(a stale control block of an earlier connection?)',
        );
      const epoch = state.journal.epoch + 1;
      const identity = state.identity ?? {
        volumeId: block.volumeId,
        regions: block.regions,
        regionSize: block.regionSize,
      };
      this.state.update({
        identity,
        journal: { epoch, file: state.journal.file, cycle: block.cycle, committedBytes: null },
      });
      this.journal = ReceiverJournal.restart(this.journalFiles[state.journal.file], epoch);
    }
    this.runningJournal('control block', this.controlOffset, bytes.length).appendData(this.controlOffset, bytes);
  }

  /** `complete N`: commits the journal of N; a repeat of the last commit's signal is accepted and changes nothing. */
  private complete(block: ControlBlock, bytes: Uint8Array): void {
    const state = this.state.state;
    if (this.journal === null && state.completedCycle === block.cycle) return;
    if (this.journal === null || state.journal.cycle !== block.cycle)
      throw new CowmapError(
        'E_BAD_REQUEST',
        `complete signal of cycle ${block.cycle}, but ${state.journal.cycle === null ? 'no cycle' : `cycle ${state.journal.cycle}`} is open`,
      );
    const journal = this.runningJournal('control block', this.controlOffset, bytes.length);
    journal.appendData(this.controlOffset, bytes);
    this.commit(journal, block);
  }

  /** The journal synced, THE commit (one slot write and its sync), then the journal applied. */
  protected commit(journal: ReceiverJournal, block: ControlBlock): void {
    journal.sync();
    this.state.update({
      completedCycle: block.cycle,
      completedSwapTimeMs: block.swapTimeMs,
      journal: { ...this.state.state.journal, committedBytes: journal.tail },
    });
    this.applyCommitted(journal);
  }

  /** Applies a committed journal to the image, syncs it, and closes the journal (one state update). */
  protected applyCommitted(journal: ReceiverJournal): void {
    const state: ReceiverState = this.state.state;
    assert(state.journal.committedBytes === journal.tail, 'apply of a journal that is not the committed one');
    applyJournal(journal, this.image, state.imageFresh);
    this.image.sync();
    this.state.update({ imageFresh: false, journal: { ...state.journal, cycle: null, committedBytes: null } });
    this.journal = null;
    // The journal file stays as it is until the next cycle restarts it: should the slot
    // just written rot, the older one (this commit) is read again and applies it again.
  }
}
