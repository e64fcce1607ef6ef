// What a recovery inherits from a killed process (CrashStorage.handOverTo, see the
// crash model in harness/crash/crashStorage.ts): the dead storage's unsynced
// writes and truncates, before-images included, and its non-durable namespace
// changes, with the captured contents of the files they unlinked or replaced. They
// become the receiver's oldest records: carried ones get negative sequence
// numbers, in the order the killed process made them.

import type { HandOverReport } from './crashReport.ts';
import { type DataRecord, type NamespaceRecord, type ReplacedTarget, TrackedFile } from './unsyncedRecords.ts';
import type { UnsyncedState } from './unsyncedState.ts';

/** Copies what `from` holds into `to` (which holds nothing yet); `from` is left as it was. */
export function carryUnsynced(from: UnsyncedState, to: UnsyncedState): HandOverReport {
  const report: HandOverReport = { writeCount: 0, truncateCount: 0, namespaceCount: 0 };
  const copies = carryFiles(from, to, report);
  carryNamespace(from, to, copies, report);
  return report;
}

/** The files, live ones and restorable orphans, with their unsynced records; returns each file's copy. */
function carryFiles(from: UnsyncedState, to: UnsyncedState, report: HandOverReport): Map<TrackedFile, TrackedFile> {
  const files = [...from.trackedFiles].filter((file) => file.state !== 'dead');
  const dataRecords = files.flatMap((file) => file.pending).sort((a, b) => a.seq - b.seq);
  const seqOf = new Map<DataRecord, number>(dataRecords.map((record, index) => [record, index - dataRecords.length]));
  const copies = new Map<TrackedFile, TrackedFile>();
  for (const file of files) {
    if (file.state === 'live' && file.pending.length > 0 && !to.inner.exists(file.path)) {
      throw new Error(
        `CrashStorage.handOverTo: ${file.path} holds unsynced data but is gone: files changed behind the crash layer between the crash and the hand-over`,
      );
    }
    const copy = new TrackedFile(file.path);
    copy.state = file.state;
    copy.content = file.content;
    to.addFile(copy);
    for (const record of file.pending) {
      // Each data record is filed under its file's path at the crash (after any rename).
      to.adoptRecord(copy, { ...record, seq: seqOf.get(record)!, path: file.path, carried: true });
      if (record.kind === 'write') report.writeCount++;
      else report.truncateCount++;
    }
    copies.set(file, copy);
  }
  return copies;
}

/** The namespace records in their order, pointing at the copied files. */
function carryNamespace(
  from: UnsyncedState,
  to: UnsyncedState,
  copies: ReadonlyMap<TrackedFile, TrackedFile>,
  report: HandOverReport,
): void {
  const records = from.namespaceRecords;
  records.forEach((record, index) => {
    const carried = { seq: index - records.length, unsyncedDirs: new Set(record.unsyncedDirs), carried: true };
    let copy: NamespaceRecord;
    if (record.kind === 'create' || record.kind === 'unlink')
      copy = { ...record, ...carried, file: copies.get(record.file)! };
    else if (record.kind === 'rename') {
      const replaced: ReplacedTarget =
        record.replaced?.kind === 'file' ? { kind: 'file', file: copies.get(record.replaced.file)! } : record.replaced;
      copy = { ...record, ...carried, replaced };
    } else copy = { ...record, ...carried };
    to.addNamespaceRecord(copy);
    report.namespaceCount++;
  });
}
