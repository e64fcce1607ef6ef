// A randomised cross-check of a power crash of the crash layer against an in-memory
// reference that needs no before-images. The seed is printed; CRASH_STORAGE_SEED
// replays it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nodePath from 'node:path';
import { sectorSize } from '../../impl/geometry.ts';
import type { FileHandle } from '../../impl/storage.ts';
import { Prng } from '../prng.ts';
import type { CrashStorage } from './crashStorage.ts';
import { durableFile, fileBytes, fresh } from './crashTestFiles.ts';

// ----- randomised cross-check against an in-memory reference ------------------------

type ReferenceRecord = { seq: number; file: number } & (
  | { kind: 'write'; position: number; data: Uint8Array }
  | { kind: 'truncate'; length: number }
);

function applyWrite(content: Uint8Array, position: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.max(content.length, position + data.length));
  out.set(content);
  out.set(data, position);
  return out;
}

function applyTruncate(content: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  out.set(content.subarray(0, Math.min(length, content.length)));
  return out;
}

function applyRecord(content: Uint8Array, record: ReferenceRecord): Uint8Array {
  return record.kind === 'write'
    ? applyWrite(content, record.position, record.data)
    : applyTruncate(content, record.length);
}

/** What the reference knows of the files: their durable contents and the unsynced records, in call order. */
interface ReferenceFiles {
  durable: Uint8Array[];
  pending: ReferenceRecord[];
}

/** Random writes, truncates and syncs of the files through `handles`, mirrored in the reference. */
function runRandomOps(prng: Prng, handles: readonly FileHandle[]): ReferenceFiles {
  const opCountMax = 24;
  const durable = handles.map((): Uint8Array => new Uint8Array(0));
  let pending: ReferenceRecord[] = [];
  const opCount = 1 + prng.nextInt(opCountMax);
  for (let op = 0; op < opCount; op++) {
    const file = prng.nextInt(handles.length);
    const handle = handles[file]!;
    const kind = prng.nextInt(10);
    if (kind < 6) {
      const position = prng.nextInt(4 * sectorSize);
      const data = new Uint8Array(1 + prng.nextInt(3 * sectorSize)).fill(1 + (op % 250));
      handle.write(position, data);
      pending.push({ seq: op, file, kind: 'write', position, data });
    } else if (kind < 8) {
      const length = prng.nextInt(5 * sectorSize);
      handle.truncate(length);
      pending.push({ seq: op, file, kind: 'truncate', length });
    } else {
      handle.sync();
      for (const record of pending) if (record.file === file) durable[file] = applyRecord(durable[file]!, record);
      pending = pending.filter((record) => record.file !== file);
    }
  }
  return { durable, pending };
}

/** Explicit random choices, so that the reference knows them: per write one per sector (whole: the first). */
interface Choices {
  writes: boolean[][];
  truncates: boolean[];
}

function drawChoices(prng: Prng, storage: CrashStorage): Choices {
  const writes = storage
    .unsyncedWrites()
    .map((info) => Array.from({ length: Math.max(1, info.sectorCount) }, () => prng.nextBool()));
  const truncates = Array.from({ length: storage.unsyncedTruncateCount() }, () => prng.nextBool());
  return { writes, truncates };
}

/** The durable contents with the kept records (or their kept sectors) applied in call order. */
function expectedContents(files: ReferenceFiles, choices: Choices, torn: boolean): Uint8Array[] {
  // Choice indexes count records in call order over all files, as `pending` holds them.
  const contents = [...files.durable];
  let writeIndex = 0;
  let truncateIndex = 0;
  for (const record of files.pending) {
    if (record.kind === 'truncate') {
      if (choices.truncates[truncateIndex++]!) contents[record.file] = applyRecord(contents[record.file]!, record);
      continue;
    }
    const sectorsKept = choices.writes[writeIndex++]!;
    if (!torn) {
      if (sectorsKept[0]!) contents[record.file] = applyRecord(contents[record.file]!, record);
      continue;
    }
    const first = Math.floor(record.position / sectorSize);
    const end = record.position + record.data.length;
    sectorsKept.forEach((kept, sector) => {
      if (!kept) return;
      const start = Math.max(record.position, (first + sector) * sectorSize);
      const stop = Math.min(end, (first + sector + 1) * sectorSize);
      const part = record.data.subarray(start - record.position, stop - record.position);
      contents[record.file] = applyWrite(contents[record.file]!, start, part);
    });
  }
  return contents;
}

test('randomised: a power crash leaves exactly the durable content plus the kept records (in-memory reference)', () => {
  // The reference computes what must be left without before-images.
  const baseSeed = Number(process.env.CRASH_STORAGE_SEED ?? 20240601);
  const runCount = 60;
  console.log(`reference-model seed: ${baseSeed} (runs ${runCount}; set CRASH_STORAGE_SEED to replay)`);
  for (let run = 0; run < runCount; run++) {
    const seed = baseSeed + run;
    const prng = new Prng(seed);
    const torn = prng.nextBool();
    const { dir, storage } = fresh();
    const names = ['x', 'y'];
    const handles = names.map((name) => durableFile(storage, dir, name, new Uint8Array(0)));
    const files = runRandomOps(prng, handles);
    const writeCount = files.pending.filter((record) => record.kind === 'write').length;
    assert.equal(storage.unsyncedWriteCount(), writeCount, `seed ${seed}`);
    const choices = drawChoices(prng, storage);
    storage.crashNow('power', {
      torn,
      keepWrite: (index) => choices.writes[index]![0]!,
      keepSector: (index, sector) => choices.writes[index]![sector]!,
      keepTruncate: (index) => choices.truncates[index]!,
    });
    const contents = expectedContents(files, choices, torn);
    names.forEach((name, file) => {
      assert.deepEqual(fileBytes(nodePath.join(dir, name)), contents[file], `seed ${seed} torn ${torn} file ${name}`);
    });
  }
});
