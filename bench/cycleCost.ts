// 2. Cycle cost: a volume of 64 KiB regions (1 GiB: 16384 regions), 1% of the
// regions dirtied at random (seeded) before each repetition; one cycle as
// `cowmap cycle` runs it (impl/runCycle.ts: startCycle, the regions of C sent in
// batches of one transferRegions call each, completeCycle) timed and its bytes
// counted through CountingStorage, against
//   - rsync --inplace --no-whole-file -I of the primary image to a replica file
//     that holds the previous repetition's image (so rsync has a delta to find),
//   - a plain copy of the whole image (fs.copyFileSync),
// each baseline followed by an fdatasync of its destination (a transfer is durable
// before it is acknowledged, so the copies are made durable too).
//
// The volume is created once and reused. Its primary is filled with seeded bytes
// through node:fs before the volume is opened (so it is fully allocated, not
// sparse, and rsync reads real data), and the secondary image, the rsync replica
// are copies of it: the state after an initial full synchronisation. The page
// cache is dropped before every contender when the machine allows it (cold
// cache); otherwise every contender runs warm. The contenders' order rotates
// between repetitions.

import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, copyFileSync, fdatasyncSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { NodeStorage } from '../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { cycleBatchBytesMax, runCycle } from '../impl/runCycle.ts';
import { CountingStorage, type IoCounts } from './countingStorage.ts';
import { digestBatchIo } from '../impl/digestTable.ts';
import { dirtyContent, mapFootprint, pickRegions } from './dirty.ts';
import { Checks, type Log, type SectionResult } from './report.ts';
import { ratios, summarize, timeSeconds } from './stats.ts';
import { allocatedBytes, dropCaches, hashFile, SeededBytes, syncFile } from './system.ts';

export interface CycleConfig {
  readonly root: string;
  readonly regions: number;
  readonly regionSize: number;
  readonly dirtyFraction: number;
  readonly repetitions: number;
  readonly seed: number;
  readonly rsync: boolean;
  /** Drop the page cache before each contender (when the machine allows it). */
  readonly cold: boolean;
}

export interface CycleVolume {
  readonly dir: string;
  readonly primaryPath: string;
  readonly imagePath: string;
  readonly regions: number;
  readonly regionSize: number;
}

/** Bytes of one metadata update (one 512-byte slot, docs/format.md). */
const metadataSlotBytes = 512;
const fillChunkBytes = 8 << 20;
type Contender = 'ours' | 'rsync' | 'copy';
const rotations: readonly (readonly Contender[])[] = [
  ['ours', 'rsync', 'copy'],
  ['rsync', 'copy', 'ours'],
  ['copy', 'ours', 'rsync'],
];

/** Fills a file with seeded bytes, chunk by chunk, then fdatasync. */
function fillFile(path: string, sizeBytes: number, seed: number): void {
  const bytes = new SeededBytes(seed);
  const fd = openSync(path, 'r+');
  try {
    for (let position = 0; position < sizeBytes; position += fillChunkBytes) {
      const chunk = bytes.next(Math.min(fillChunkBytes, sizeBytes - position));
      const written = writeSync(fd, chunk, 0, chunk.length, position);
      if (written !== chunk.length) throw new Error(`fill: short write at ${position} of ${path}`);
    }
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readRegionOf(path: string, region: number, regionSize: number): Uint8Array {
  const buffer = new Uint8Array(regionSize);
  const fd = openSync(path, 'r');
  try {
    const count = readSync(fd, buffer, 0, regionSize, region * regionSize);
    if (count !== regionSize) throw new Error(`short read of region ${region} of ${path}`);
  } finally {
    closeSync(fd);
  }
  return buffer;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

interface RsyncRun {
  seconds: number;
  status: number | null;
  /** Bytes its processes read and wrote through read/write system calls (files and their pipes), from /proc/PID/io of the shell that waited for them. */
  syscallBytesRead: number | null;
  syscallBytesWritten: number | null;
  /** rsync --stats: the data it could not match and sent literally. */
  literalBytes: number | null;
  stderr: string;
}

const rsyncArgs = ['--inplace', '--no-whole-file', '-I', '--stats'];

function runRsync(source: string, destination: string): RsyncRun {
  const holder: { result?: SpawnSyncReturns<string> } = {};
  const seconds = timeSeconds(() => {
    // The shell's /proc/PID/io includes the I/O of the children it has reaped (rsync's three processes).
    holder.result = spawnSync(
      'sh',
      ['-c', `rsync ${rsyncArgs.join(' ')} "$1" "$2" && cat /proc/$$/io`, 'rsync-bench', source, destination],
      {
        encoding: 'utf8',
        maxBuffer: 16 << 20,
      },
    );
    syncFile(destination);
  });
  const finished = holder.result!;
  const stdout = finished.stdout ?? '';
  const number = (pattern: RegExp) => {
    const match = pattern.exec(stdout);
    return match === null ? null : Number(match[1]!.replaceAll(',', ''));
  };
  return {
    seconds,
    status: finished.status,
    syscallBytesRead: number(/^rchar: (\d+)/m),
    syscallBytesWritten: number(/^wchar: (\d+)/m),
    literalBytes: number(/Literal data: ([\d,]+) bytes/),
    stderr: (finished.stderr ?? '').trim(),
  };
}

export function prepareCycleVolume(config: CycleConfig, log: Log): CycleVolume {
  const dir = join(config.root, 'cycle-volume');
  const { regions, regionSize } = config;
  const sizeBytes = regions * regionSize;
  log(
    `  cycle: creating a volume of ${regions} regions x ${regionSize / 1024} KiB (${(sizeBytes / (1 << 30)).toFixed(2)} GiB) and filling its primary with seeded bytes`,
  );
  ReplicatedVolume.create(new NodeStorage(), dir, { regions, regionSize }).close();
  const primaryPath = join(dir, 'primary');
  const imagePath = join(dir, 'secondary', 'image');
  fillFile(primaryPath, sizeBytes, config.seed);
  // The secondary as after an initial full synchronisation.
  copyFileSync(primaryPath, imagePath);
  syncFile(imagePath);
  return { dir, primaryPath, imagePath, regions, regionSize };
}

export function benchCycle(config: CycleConfig, volumeFiles: CycleVolume, log: Log): SectionResult {
  const { regions, regionSize } = config;
  const checks = new Checks();
  const sizeBytes = regions * regionSize;
  const dirtyCount = Math.max(1, Math.round(regions * config.dirtyFraction));
  const { primaryPath, imagePath } = volumeFiles;
  const baselineDir = join(config.root, 'cycle-baselines');
  mkdirSync(baselineDir);
  const rsyncReplica = join(baselineDir, 'rsync-replica');
  const copyPath = join(baselineDir, 'copy');
  if (config.rsync) {
    copyFileSync(primaryPath, rsyncReplica);
    syncFile(rsyncReplica);
  }
  const primaryAllocated = allocatedBytes(primaryPath);
  checks.expect(
    'cycle: the primary image is fully written (not sparse)',
    primaryAllocated >= sizeBytes,
    `${primaryAllocated} bytes allocated of ${sizeBytes}`,
  );

  const storage = new CountingStorage(new NodeStorage());
  const volume = ReplicatedVolume.open(storage, volumeFiles.dir);
  storage.take();

  const cold = config.cold && dropCaches();
  const series = {
    oursSeconds: [] as number[],
    rsyncSeconds: [] as number[],
    copySeconds: [] as number[],
    oursBytesRead: [] as number[],
    oursBytesWritten: [] as number[],
    oursSyncCalls: [] as number[],
    oursMetadataBytesWritten: [] as number[],
    rsyncSyscallBytesRead: [] as (number | null)[],
    rsyncSyscallBytesWritten: [] as (number | null)[],
    rsyncLiteralBytes: [] as (number | null)[],
  };
  const bytesFailures: string[] = [];
  const contentFailures: string[] = [];
  const rsyncFailures: string[] = [];
  let expectedMetadataBytes = 0;
  let lastDigestBytes = 0;
  let lastCounts: IoCounts | null = null;
  let lastBatches = 0;

  for (let repetition = 0; repetition < config.repetitions; repetition++) {
    const repetitionSeed = config.seed * 1_000 + repetition + 1;
    const dirty = pickRegions(regions, dirtyCount, repetitionSeed);
    const content = dirtyContent(dirty, regionSize, repetitionSeed);
    for (let index = 0; index < dirty.length; index++) volume.writeRegion(dirty[index]!, content[index]!);
    const footprint = mapFootprint(dirty);

    let oursSeconds = 0;
    let rsyncRun: RsyncRun | null = null;
    let copySeconds = 0;
    for (const contender of rotations[repetition % rotations.length]!) {
      if (cold) dropCaches();
      if (contender === 'ours') {
        storage.take();
        let sent: readonly number[] = [];
        let batches = 0;
        oursSeconds = timeSeconds(() => {
          ({ regions: sent, batches } = runCycle(volume));
        });
        const counts = storage.take();
        lastCounts = counts;
        lastBatches = batches;
        if (sent.length !== dirty.length || sent.some((region, index) => region !== dirty[index])) {
          bytesFailures.push(
            `repetition ${repetition}: the cycle sent ${sent.length} regions, ${dirty.length} were dirtied`,
          );
        }
        // Bytes moved: each dirty region read from P and written to S; the metadata:
        // two 512-byte slot updates (swap, completion) and the map pages of C cleared;
        // the secondary's digest table: each page a batch touches read and written
        // once (digestBatchIo). Syncs: per batch one of S and one of its digest
        // table, the two metadata updates, the map.
        const digestIo = { bytesRead: 0, bytesWritten: 0, writeCalls: 0, syncCalls: 0 };
        const batchRegions = Math.max(1, Math.floor(cycleBatchBytesMax / regionSize));
        for (let start = 0; start < dirty.length; start += batchRegions) {
          const io = digestBatchIo(dirty.slice(start, start + batchRegions));
          for (const field of ['bytesRead', 'bytesWritten', 'writeCalls', 'syncCalls'] as const)
            digestIo[field] += io[field];
        }
        const expected = {
          bytesRead: dirty.length * regionSize + digestIo.bytesRead,
          bytesWritten: dirty.length * regionSize + 2 * metadataSlotBytes + footprint.bytes + digestIo.bytesWritten,
          writeCalls: dirty.length + 2 + footprint.runs + digestIo.writeCalls,
          syncCalls: batches + digestIo.syncCalls + 3,
        };
        lastDigestBytes = digestIo.bytesWritten;
        if (batches !== Math.ceil(dirty.length / Math.max(1, Math.floor(cycleBatchBytesMax / regionSize)))) {
          bytesFailures.push(`repetition ${repetition}: ${batches} batches of transfers for ${dirty.length} regions`);
        }
        expectedMetadataBytes = 2 * metadataSlotBytes + footprint.bytes + digestIo.bytesWritten;
        for (const field of ['bytesRead', 'bytesWritten', 'writeCalls', 'syncCalls'] as const) {
          if (counts[field] !== expected[field])
            bytesFailures.push(`repetition ${repetition}: ${field} ${counts[field]}, expected ${expected[field]}`);
        }
        series.oursBytesRead.push(counts.bytesRead);
        series.oursBytesWritten.push(counts.bytesWritten);
        series.oursSyncCalls.push(counts.syncCalls);
        series.oursMetadataBytesWritten.push(counts.bytesWritten - dirty.length * regionSize);
      } else if (contender === 'rsync') {
        if (!config.rsync) continue;
        rsyncRun = runRsync(primaryPath, rsyncReplica);
        if (rsyncRun.status !== 0)
          rsyncFailures.push(`repetition ${repetition}: rsync exited ${rsyncRun.status}: ${rsyncRun.stderr}`);
      } else {
        copySeconds = timeSeconds(() => {
          copyFileSync(primaryPath, copyPath);
          syncFile(copyPath);
        });
      }
    }
    // The replica holds P@swap for every dirty region (nothing was written during the cycle).
    for (let index = 0; index < dirty.length; index++) {
      const region = dirty[index]!;
      const image = readRegionOf(imagePath, region, regionSize);
      const primary = readRegionOf(primaryPath, region, regionSize);
      if (!sameBytes(image, content[index]!) || !sameBytes(primary, content[index]!)) {
        contentFailures.push(
          `repetition ${repetition}: region ${region}: the secondary does not hold the primary at the swap`,
        );
      }
    }
    series.oursSeconds.push(oursSeconds);
    series.copySeconds.push(copySeconds);
    if (rsyncRun !== null) {
      series.rsyncSeconds.push(rsyncRun.seconds);
      series.rsyncSyscallBytesRead.push(rsyncRun.syscallBytesRead);
      series.rsyncSyscallBytesWritten.push(rsyncRun.syscallBytesWritten);
      series.rsyncLiteralBytes.push(rsyncRun.literalBytes);
    }
    log(
      `  cycle repetition ${repetition + 1}/${config.repetitions}: ${dirty.length} dirty regions; ours ${oursSeconds.toFixed(3)} s, ` +
        `rsync ${rsyncRun === null ? '-' : rsyncRun.seconds.toFixed(3)} s, copy ${copySeconds.toFixed(3)} s${cold ? ' (cold cache)' : ' (warm cache)'}`,
    );
  }
  volume.close();

  checks.expectAll(
    `cycle: bytes moved = dirty regions x region size + metadata (2 x ${metadataSlotBytes} B slots + the map bytes of C)`,
    bytesFailures,
    `${dirtyCount} x ${regionSize} B read and written, + ${expectedMetadataBytes} B metadata written (${lastDigestBytes} B of it the secondary's digest table), ${2 * lastBatches + 3} fdatasyncs (${2 * lastBatches} for the transfers in batches of up to ${cycleBatchBytesMax >> 20} MiB: S and its digest table, 2 metadata, 1 map), every repetition`,
  );
  checks.expectAll(
    'cycle: the secondary holds the primary at the swap for every dirty region (byte compare)',
    contentFailures,
    `${dirtyCount} regions, every repetition`,
  );
  if (config.rsync) checks.expectAll('cycle: rsync succeeded', rsyncFailures, `exit 0 in every repetition`);

  // At the end every copy of the image is the primary, whole (SHA-256 of each file).
  log('  cycle: hashing the primary and every copy of it');
  const primaryHash = hashFile(primaryPath);
  const copies: [string, string][] = [
    ['secondary image', imagePath],
    ['plain copy', copyPath],
  ];
  if (config.rsync) copies.push(['rsync replica', rsyncReplica]);
  const hashFailures = copies
    .filter(([, path]) => hashFile(path) !== primaryHash)
    .map(([name]) => `${name} differs from the primary`);
  checks.expectAll(
    'cycle: the secondary image, the rsync replica and the copy equal the primary (whole-file SHA-256)',
    hashFailures,
    `sha256 ${primaryHash.slice(0, 16)}...`,
  );
  checks.expect(
    'cycle: the image files have the volume size',
    statSync(imagePath).size === sizeBytes,
    `${statSync(imagePath).size} bytes`,
  );

  const ours = summarize(series.oursSeconds);
  const copy = summarize(series.copySeconds);
  const volumeLabel =
    sizeBytes >= 1 << 30 ? `${(sizeBytes / (1 << 30)).toFixed(0)} GiB` : `${(sizeBytes / (1 << 20)).toFixed(0)} MiB`;
  const figures: SectionResult['figures'] = [];
  const rsyncSummary = series.rsyncSeconds.length > 0 ? summarize(series.rsyncSeconds) : null;
  const literal = series.rsyncLiteralBytes.filter((value): value is number => value !== null);
  const rsyncRead = series.rsyncSyscallBytesRead.filter((value): value is number => value !== null);
  const rsyncWritten = series.rsyncSyscallBytesWritten.filter((value): value is number => value !== null);
  if (rsyncSummary !== null) {
    const speedup = summarize(ratios(series.rsyncSeconds, series.oursSeconds));
    figures.push({
      key: 'cycleSpeedupVsRsync',
      label: `cycle of a ${volumeLabel} volume, 1% dirty: rsync time / ours`,
      unit: 'ratio',
      summary: speedup,
      against: `rsync ${rsyncArgs.join(' ')} + fdatasync`,
      target: { text: '>= 20', met: speedup.median >= 20 },
      detail: `ours ${ours.median.toFixed(3)} s vs rsync ${rsyncSummary.median.toFixed(3)} s`,
      why:
        `our cycle is ${dirtyCount} random ${regionSize / 1024} KiB reads of P${cold ? ' from a cold cache' : ''} and ${dirtyCount} pwrites on S, synced once per batch with the digest table (${2 * lastBatches + 3} fdatasyncs ` +
        `in all): ${((ours.median / dirtyCount) * 1e6).toFixed(0)} us per region; rsync reads ${((2 * sizeBytes) / (1 << 30)).toFixed(0)} GiB sequentially and syncs once`,
    });
  }
  const copySpeedup = summarize(ratios(series.copySeconds, series.oursSeconds));
  figures.push({
    key: 'cycleSpeedupVsCopy',
    label: `cycle of a ${volumeLabel} volume, 1% dirty: whole-image copy time / ours`,
    unit: 'ratio',
    summary: copySpeedup,
    against: 'fs.copyFileSync of the image + fdatasync',
    detail: `ours ${ours.median.toFixed(3)} s vs copy ${copy.median.toFixed(3)} s`,
  });
  figures.push({
    key: 'cycleSeconds',
    label: `one cycle, ours (${dirtyCount} regions sent)`,
    unit: 's',
    summary: ours,
    detail: `read ${mib(dirtyCount * regionSize)} + written ${mib(dirtyCount * regionSize)} + ${expectedMetadataBytes} B metadata and digests; ${2 * lastBatches + 3} fdatasyncs`,
  });
  if (rsyncSummary !== null) {
    figures.push({
      key: 'cycleRsyncSeconds',
      label: 'rsync of the primary image to its replica',
      unit: 's',
      summary: rsyncSummary,
      detail:
        rsyncRead.length > 0
          ? `syscall bytes read ${mib(summarize(rsyncRead).median)}, written ${mib(summarize(rsyncWritten).median)} (files and pipes); literal ${literal.length > 0 ? mib(summarize(literal).median) : '?'}`
          : 'bytes not measured',
    });
  }
  figures.push({
    key: 'cycleCopySeconds',
    label: 'plain copy of the whole image',
    unit: 's',
    summary: copy,
    detail: `read ${mib(sizeBytes)} + written ${mib(sizeBytes)}`,
  });

  return {
    section: 'cycle cost',
    figures,
    checks: checks.list,
    notes: [
      `Cycle: ${regions} regions x ${regionSize} B (${volumeLabel}), ${dirtyCount} regions (${(config.dirtyFraction * 100).toFixed(0)}%) dirtied at random (seeded, new regions every repetition) through writeRegion while idle, untimed; ` +
        `${config.repetitions} repetitions; contenders in rotating order; page cache ${cold ? 'dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every contender: cold for all' : 'not dropped: warm for all contenders equally'}.`,
      `Bytes moved by our cycle, counted through a Storage wrapper: read ${dirtyCount} x ${regionSize} B = ${dirtyCount * regionSize} B (the dirty regions of P), written the same to S plus ${expectedMetadataBytes} B of metadata ` +
        `(2 x ${metadataSlotBytes} B metadata slots for the swap and the completion, the 4 KiB map pages of the current map cleared at completion, and each 4 KiB page of the secondary's digest table a batch touches, also read once); checked equal in every repetition.`,
      `rsync (${rsyncArgs.join(' ')}) updates a replica file equal to the previous image, so it has a 1% delta to find; it reads both 1 GiB files whole. Its byte counts are the rchar/wchar of its processes (read/write system calls on files and on its pipes). ` +
        `Both baselines end with an fdatasync of their destination; ours fdatasyncs the secondary and its digest table once per batch of transfers (transferRegions, up to ${cycleBatchBytesMax >> 20} MiB each), then the metadata and the current map.`,
      `The primary was filled with seeded bytes through node:fs before the volume was opened (not sparse: ${primaryAllocated} B allocated), and the secondary and rsync replica start as copies of it (the secondary's digest table is left as created, so the volume would call every region it does not send rot: the bench reads S only through node:fs).`,
    ],
    data: {
      regions,
      regionSize,
      dirtyRegions: dirtyCount,
      repetitions: config.repetitions,
      cacheCold: cold,
      expectedBytesRead: dirtyCount * regionSize + lastDigestBytes,
      expectedBytesWritten: dirtyCount * regionSize + expectedMetadataBytes,
      metadataBytesWritten: expectedMetadataBytes,
      lastCycleCounts: lastCounts,
      rsyncCommand: `rsync ${rsyncArgs.join(' ')} PRIMARY REPLICA`,
      ...series,
    },
  };
}

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(2)} MiB`;
}
