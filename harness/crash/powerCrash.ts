// A power crash of the crash layer (harness/crash/crashStorage.ts), made real on
// the wrapped storage in three named steps: decide what survives, undo the dropped
// namespace changes, rebuild each surviving file's data.
//
// How the files are rebuilt, with before-images: before every write the layer
// reads, through the wrapped storage, the bytes the write will overwrite and the
// file's length; before a shrinking truncate, the bytes it cuts off; before an
// unlink or a rename over a file, that file's whole content. At a crash it first
// undoes the dropped namespace operations, newest first, then for each surviving
// file undoes all its unsynced writes and truncates, newest first (restoring
// before-images and lengths), which gives its durable content, and re-applies the
// kept ones (or their kept sectors), oldest first. The files on disk are then the
// post-crash state before SimulatedCrash is thrown.

import type { FileHandle } from '../../impl/storage.ts';
import { Prng } from '../prng.ts';
import { isSameOrAncestor } from './crashPaths.ts';
import type { CrashReport } from './crashReport.ts';
import { errorCode } from './injectedFaults.ts';
import type { PowerChoices } from './powerChoices.ts';
import {
  carriedMark,
  coveredBytesOf,
  type NamespaceRecord,
  recordsDepend,
  type SectorChoice,
  sectorCountOf,
  type TrackedFile,
  type TruncateRecord,
  undoData,
  type WriteRecord,
} from './unsyncedRecords.ts';
import type { UnsyncedState } from './unsyncedState.ts';

type WriteDecisions = Map<WriteRecord, SectorChoice | boolean>;
type TruncateDecisions = Map<TruncateRecord, boolean>;

/** Decides, fills `report` in, and rewrites the files to what the crash leaves. */
export function materializePowerCrash(
  state: UnsyncedState,
  choices: PowerChoices,
  report: CrashReport,
  sectorSize: number,
): void {
  // The coins are drawn in this order (writes, truncates, namespace): a seed's outcome depends on it.
  const prng = new Prng(report.seed);
  const writeKept = decideWrites(state.pending('write'), choices, prng, report, sectorSize);
  const truncateKept = decideTruncates(state.pending('truncate'), choices, prng, report);
  const namespaceKept = decideNamespace(state.namespaceRecords, choices, prng, report);
  undoDroppedNamespace(state, namespaceKept);
  rebuildFiles(state, writeKept, truncateKept, sectorSize);
}

// ----- 1. decide -------------------------------------------------------------

function decideWrites(
  writes: WriteRecord[],
  choices: PowerChoices,
  prng: Prng,
  report: CrashReport,
  sectorSize: number,
): WriteDecisions {
  const writeKept: WriteDecisions = new Map();
  writes.forEach((record, index) => {
    const entry = { index, path: record.path, position: record.position, length: record.data.length };
    if (!report.torn) {
      const kept = choices.keepWrite !== undefined ? choices.keepWrite(index) : prng.nextBool();
      writeKept.set(record, kept);
      report.writes.push({ ...entry, kept, ...carriedMark(record) });
      return;
    }
    const choice = decideSectors(record, index, choices, prng, sectorSize);
    writeKept.set(record, choice);
    const sectorsTorn = choice.byteMasks.flatMap((mask, sector) => (mask === null ? [] : [sector]));
    const tornMark = sectorsTorn.length > 0 ? { sectorsTorn } : {};
    const kept = choice.sectorsKept.every((sectorKept) => sectorKept);
    report.writes.push({ ...entry, kept, sectorsKept: choice.sectorsKept, ...tornMark, ...carriedMark(record) });
  });
  return writeKept;
}

/** Torn: each covered sector is torn inside (tearSector), or kept or dropped whole. */
function decideSectors(
  record: WriteRecord,
  index: number,
  choices: PowerChoices,
  prng: Prng,
  sectorSize: number,
): SectorChoice {
  const { position } = record;
  const length = record.data.length;
  const sectorCount = sectorCountOf(position, length, sectorSize);
  const choice: SectorChoice = { sectorsKept: [], byteMasks: [] };
  for (let sector = 0; sector < sectorCount; sector++) {
    const mask = choices.tearSector?.(index, sector, coveredBytesOf(position, length, sector, sectorSize)) ?? null;
    choice.byteMasks.push(mask);
    if (mask !== null) {
      choice.sectorsKept.push(false);
      continue;
    }
    choice.sectorsKept.push(
      choices.keepSector !== undefined
        ? choices.keepSector(index, sector)
        : choices.keepWrite !== undefined
          ? choices.keepWrite(index)
          : prng.nextBool(),
    );
  }
  return choice;
}

function decideTruncates(
  truncates: TruncateRecord[],
  choices: PowerChoices,
  prng: Prng,
  report: CrashReport,
): TruncateDecisions {
  const truncateKept: TruncateDecisions = new Map();
  truncates.forEach((record, index) => {
    const kept = choices.keepTruncate !== undefined ? choices.keepTruncate(index) : prng.nextBool();
    truncateKept.set(record, kept);
    report.truncates.push({ index, path: record.path, length: record.length, kept, ...carriedMark(record) });
  });
  return truncateKept;
}

/** Each namespace record kept or dropped, then closed under dependency: a change on a dropped name is dropped. */
function decideNamespace(
  records: readonly NamespaceRecord[],
  choices: PowerChoices,
  prng: Prng,
  report: CrashReport,
): boolean[] {
  const namespaceKept = records.map((_, index) =>
    choices.keepNamespace !== undefined ? choices.keepNamespace(index) : prng.nextBool(),
  );
  for (let earlier = 0; earlier < records.length; earlier++) {
    if (namespaceKept[earlier]) continue;
    for (let later = earlier + 1; later < records.length; later++) {
      if (namespaceKept[later] && recordsDepend(records[earlier]!, records[later]!)) namespaceKept[later] = false;
    }
  }
  records.forEach((record, index) => {
    const kept = namespaceKept[index]!;
    const carried = record.carried ? { carried: true as const } : {};
    if (record.kind === 'rename')
      report.namespace.push({ index, kind: 'rename', path: record.from, to: record.to, kept, ...carried });
    else report.namespace.push({ index, kind: record.kind, path: record.path, kept, ...carried });
  });
  return namespaceKept;
}

// ----- 2. undo the dropped namespace changes ------------------------------------

/**
 * Newest first. Every later change on the same names was dropped too (the
 * dependency closure), so each undo finds its names as the change left them.
 */
function undoDroppedNamespace(state: UnsyncedState, namespaceKept: readonly boolean[]): void {
  const records = state.namespaceRecords;
  for (let index = records.length - 1; index >= 0; index--) {
    if (!namespaceKept[index]) undoNamespace(state, records[index]!);
  }
}

function undoNamespace(state: UnsyncedState, record: NamespaceRecord): void {
  const { inner } = state;
  switch (record.kind) {
    case 'create': {
      inner.unlink(record.path);
      const file = state.filesByPath.get(record.path);
      if (file !== undefined) {
        state.filesByPath.delete(record.path);
        file.state = 'dead';
      }
      record.file.state = 'dead';
      return;
    }
    case 'unlink':
      restoreOrphan(state, record.file, record.path);
      return;
    case 'mkdir':
      // The directory's own entry is lost: everything in it goes with it, durable or not.
      removeTree(state, record.path);
      return;
    case 'rmdir':
      inner.mkdir(record.path);
      return;
    case 'rename':
      inner.rename(record.to, record.from);
      state.moveTracked(record.to, record.from);
      if (record.replaced?.kind === 'file') restoreOrphan(state, record.replaced.file, record.to);
      else if (record.replaced?.kind === 'directory') inner.mkdir(record.to);
      return;
  }
}

/** Removes a directory and everything under it (through the wrapped storage), and forgets the files tracked there. */
function removeTree(state: UnsyncedState, dir: string): void {
  const { inner } = state;
  if (!inner.exists(dir)) return;
  for (const name of inner.list(dir)) {
    const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
    try {
      inner.unlink(path);
    } catch (error) {
      const code = errorCode(error);
      if (code !== 'EISDIR' && code !== 'EPERM') throw error;
      removeTree(state, path);
    }
  }
  inner.rmdir(dir);
  for (const file of [...state.trackedFiles]) {
    if (file.state === 'live' && isSameOrAncestor(dir, file.path)) state.forget(file);
  }
}

function restoreOrphan(state: UnsyncedState, file: TrackedFile, path: string): void {
  const content = file.content ?? new Uint8Array(0);
  const handle = state.inner.open(path, { create: true });
  try {
    if (content.length > 0) handle.write(0, content);
  } finally {
    handle.close();
  }
  state.revive(file, path);
}

// ----- 3. rebuild the data ----------------------------------------------------------

/**
 * Each surviving file: every unsynced record undone newest first (back to its
 * durable content), then the kept ones redone oldest first.
 */
function rebuildFiles(
  state: UnsyncedState,
  writeKept: WriteDecisions,
  truncateKept: TruncateDecisions,
  sectorSize: number,
): void {
  for (const file of state.trackedFiles) {
    if (file.state !== 'live' || file.pending.length === 0) continue;
    const handle = state.inner.open(file.path, { create: false });
    try {
      for (let index = file.pending.length - 1; index >= 0; index--) undoData(handle, file.pending[index]!);
      for (const record of file.pending) {
        if (record.kind === 'truncate') {
          if (truncateKept.get(record) === true) handle.truncate(record.length);
          continue;
        }
        const kept = writeKept.get(record);
        if (kept === true) handle.write(record.position, record.data);
        else if (kept !== undefined && kept !== false) redoSectors(handle, record, kept, sectorSize);
      }
    } finally {
      handle.close();
    }
  }
}

function redoSectors(handle: FileHandle, record: WriteRecord, choice: SectorChoice, sectorSize: number): void {
  const end = record.position + record.data.length;
  const firstSector = Math.floor(record.position / sectorSize);
  choice.sectorsKept.forEach((kept, sector) => {
    const start = Math.max(record.position, (firstSector + sector) * sectorSize);
    const stop = Math.min(end, (firstSector + sector + 1) * sectorSize);
    const mask = choice.byteMasks[sector] ?? null;
    if (mask !== null) {
      // Torn inside the sector: each run of kept bytes is written as it was.
      let run = -1;
      for (let at = start; at <= stop; at++) {
        const keep = at < stop && mask(at - start);
        if (keep && run < 0) run = at;
        if (!keep && run >= 0) {
          handle.write(run, record.data.subarray(run - record.position, at - record.position));
          run = -1;
        }
      }
      return;
    }
    if (!kept) return;
    handle.write(start, record.data.subarray(start - record.position, stop - record.position));
  });
}
