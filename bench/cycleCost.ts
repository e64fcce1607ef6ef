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
// The volume (cycleVolume.ts) is created once and reused; the rsync replica starts
// as a copy of its primary. The page cache is dropped before every contender when
// the machine allows it (cold cache); otherwise every contender runs warm. The
// contenders' order rotates between repetitions (cycleRepetitions.ts).

import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { slotSize as metadataSlotBytes } from '../impl/metadata.ts';
import { NodeStorage } from '../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../impl/replicatedVolume.ts';
import { cycleBatchBytesMax } from '../impl/runCycle.ts';
import { CountingStorage } from '../harness/storage/countingStorage.ts';
import { type CycleConfig, type CycleFiles, CycleRepetitions } from './cycleRepetitions.ts';
import type { CycleVolume } from './cycleVolume.ts';
import { Checks, type Figure, type Log, type SectionResult } from './report.ts';
import { rsyncArgs } from './rsyncRun.ts';
import { ratios, summarize } from './stats.ts';
import { allocatedBytes, dropCaches, hashFile, syncFile } from './system.ts';
import { mib, volumeSizeLabel } from './units.ts';

/** What the figures and notes say about the run: its sizes and what the last cycle moved. */
interface CycleOutcome {
  readonly config: CycleConfig;
  readonly repetitions: CycleRepetitions;
  readonly cold: boolean;
  readonly dirtyCount: number;
  readonly sizeBytes: number;
  /** Bytes written besides the regions, and the digest table's part of them. */
  readonly metadataBytes: number;
  readonly digestBytes: number;
  /** fdatasyncs of one cycle. */
  readonly syncCalls: number;
}

/** The baselines' destinations, the rsync replica a durable copy of the primary. */
function prepareBaselines(config: CycleConfig, volumeFiles: CycleVolume): CycleFiles {
  const baselineDir = join(config.root, 'cycle-baselines');
  mkdirSync(baselineDir);
  const files = {
    primaryPath: volumeFiles.primaryPath,
    imagePath: volumeFiles.imagePath,
    rsyncReplica: join(baselineDir, 'rsync-replica'),
    copyPath: join(baselineDir, 'copy'),
  };
  if (config.rsync) {
    copyFileSync(files.primaryPath, files.rsyncReplica);
    syncFile(files.rsyncReplica);
  }
  return files;
}

/** Every copy of the image equals the primary, whole (SHA-256 of each file), at the end. */
function checkFinalImages(checks: Checks, files: CycleFiles, outcome: CycleOutcome, log: Log): void {
  log('  cycle: hashing the primary and every copy of it');
  const primaryHash = hashFile(files.primaryPath);
  const copies: [string, string][] = [
    ['secondary image', files.imagePath],
    ['plain copy', files.copyPath],
  ];
  if (outcome.config.rsync) copies.push(['rsync replica', files.rsyncReplica]);
  const hashFailures = copies
    .filter(([, path]) => hashFile(path) !== primaryHash)
    .map(([name]) => `${name} differs from the primary`);
  checks.expectAll(
    'cycle: the secondary image, the rsync replica and the copy equal the primary (whole-file SHA-256)',
    hashFailures,
    `sha256 ${primaryHash.slice(0, 16)}...`,
  );
  const imageBytes = statSync(files.imagePath).size;
  checks.expect('cycle: the image files have the volume size', imageBytes === outcome.sizeBytes, `${imageBytes} bytes`);
}

/** What every repetition's checks found. */
function checkRepetitions(checks: Checks, outcome: CycleOutcome): void {
  const { config, repetitions, dirtyCount, metadataBytes, syncCalls } = outcome;
  const transferSyncs = syncCalls - 3;
  checks.expectAll(
    `cycle: bytes moved = dirty regions x region size + metadata (2 x ${metadataSlotBytes} B slots + the map bytes of C)`,
    repetitions.bytesFailures,
    `${dirtyCount} x ${config.regionSize} B read and written, + ${metadataBytes} B metadata written ` +
      `(${outcome.digestBytes} B of it the secondary's digest table), ${syncCalls} fdatasyncs (${transferSyncs} for the ` +
      `transfers in batches of up to ${cycleBatchBytesMax >> 20} MiB: S and its digest table, 2 metadata, 1 map), ` +
      'every repetition',
  );
  checks.expectAll(
    'cycle: the secondary holds the primary at the swap for every dirty region (byte compare)',
    repetitions.contentFailures,
    `${dirtyCount} regions, every repetition`,
  );
  if (config.rsync) checks.expectAll('cycle: rsync succeeded', repetitions.rsyncFailures, 'exit 0 in every repetition');
}

/** cycleSpeedupVsRsync and cycleRsyncSeconds, when rsync ran. */
function rsyncFigures(outcome: CycleOutcome, volumeLabel: string): Figure[] {
  const { series } = outcome.repetitions;
  if (series.rsyncSeconds.length === 0) return [];
  const { dirtyCount, sizeBytes } = outcome;
  const ours = summarize(series.oursSeconds);
  const rsync = summarize(series.rsyncSeconds);
  const speedup = summarize(ratios(series.rsyncSeconds, series.oursSeconds));
  const known = (values: (number | null)[]) => values.filter((value): value is number => value !== null);
  const medianMib = (values: number[]) => (values.length > 0 ? mib(summarize(values).median, 2) : '?');
  const rsyncRead = known(series.rsyncSyscallBytesRead);
  const rsyncWritten = known(series.rsyncSyscallBytesWritten);
  return [
    {
      key: 'cycleSpeedupVsRsync',
      label: `cycle of a ${volumeLabel} volume, 1% dirty: rsync time / ours`,
      unit: 'ratio',
      summary: speedup,
      against: `rsync ${rsyncArgs.join(' ')} + fdatasync`,
      target: { text: '>= 20', met: speedup.median >= 20 },
      detail: `ours ${ours.median.toFixed(3)} s vs rsync ${rsync.median.toFixed(3)} s`,
      why:
        `our cycle is ${dirtyCount} random ${outcome.config.regionSize / 1024} KiB reads of P` +
        `${outcome.cold ? ' from a cold cache' : ''} and ${dirtyCount} pwrites on S, synced once per batch with the ` +
        `digest table (${outcome.syncCalls} fdatasyncs in all): ${((ours.median / dirtyCount) * 1e6).toFixed(0)} us ` +
        `per region; rsync reads ${((2 * sizeBytes) / (1 << 30)).toFixed(0)} GiB sequentially and syncs once`,
    },
    {
      key: 'cycleRsyncSeconds',
      label: 'rsync of the primary image to its replica',
      unit: 's',
      summary: rsync,
      detail:
        rsyncRead.length > 0
          ? `syscall bytes read ${medianMib(rsyncRead)}, written ${medianMib(rsyncWritten)} (files and pipes); ` +
            `literal ${medianMib(known(series.rsyncLiteralBytes))}`
          : 'bytes not measured',
    },
  ];
}

/** The figures in their order in results.json: the speedups, then the seconds of each contender. */
function cycleFigures(outcome: CycleOutcome): Figure[] {
  const { series } = outcome.repetitions;
  const { dirtyCount, sizeBytes } = outcome;
  const regionBytes = dirtyCount * outcome.config.regionSize;
  const ours = summarize(series.oursSeconds);
  const copy = summarize(series.copySeconds);
  const volumeLabel = volumeSizeLabel(sizeBytes);
  const [speedupVsRsync, rsyncSeconds] = rsyncFigures(outcome, volumeLabel);
  const copySpeedup = summarize(ratios(series.copySeconds, series.oursSeconds));
  const figures: (Figure | undefined)[] = [
    speedupVsRsync,
    {
      key: 'cycleSpeedupVsCopy',
      label: `cycle of a ${volumeLabel} volume, 1% dirty: whole-image copy time / ours`,
      unit: 'ratio',
      summary: copySpeedup,
      against: 'fs.copyFileSync of the image + fdatasync',
      detail: `ours ${ours.median.toFixed(3)} s vs copy ${copy.median.toFixed(3)} s`,
    },
    {
      key: 'cycleSeconds',
      label: `one cycle, ours (${dirtyCount} regions sent)`,
      unit: 's',
      summary: ours,
      detail:
        `read ${mib(regionBytes, 2)} + written ${mib(regionBytes, 2)} + ${outcome.metadataBytes} B metadata and ` +
        `digests; ${outcome.syncCalls} fdatasyncs`,
    },
    rsyncSeconds,
    {
      key: 'cycleCopySeconds',
      label: 'plain copy of the whole image',
      unit: 's',
      summary: copy,
      detail: `read ${mib(sizeBytes, 2)} + written ${mib(sizeBytes, 2)}`,
    },
  ];
  return figures.filter((figure) => figure !== undefined);
}

function cycleNotes(outcome: CycleOutcome, primaryAllocated: number): string[] {
  const { config, dirtyCount, metadataBytes, cold } = outcome;
  const { regions, regionSize } = config;
  return [
    `Cycle: ${regions} regions x ${regionSize} B (${volumeSizeLabel(outcome.sizeBytes)}), ${dirtyCount} regions ` +
      `(${(config.dirtyFraction * 100).toFixed(0)}%) dirtied at random (seeded, new regions every repetition) ` +
      `through writeRegion while idle, untimed; ${config.repetitions} repetitions; contenders in rotating order; ` +
      `page cache ${
        cold
          ? 'dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every contender: cold for all'
          : 'not dropped: warm for all contenders equally'
      }.`,
    `Bytes moved by our cycle, counted through a Storage wrapper: read ${dirtyCount} x ${regionSize} B = ` +
      `${dirtyCount * regionSize} B (the dirty regions of P), written the same to S plus ${metadataBytes} B of ` +
      `metadata (2 x ${metadataSlotBytes} B metadata slots for the swap and the completion, the 4 KiB map pages of ` +
      "the current map cleared at completion, and each 4 KiB page of the secondary's digest table a batch touches, " +
      'also read once); checked equal in every repetition.',
    `rsync (${rsyncArgs.join(' ')}) updates a replica file equal to the previous image, so it has a 1% delta to ` +
      'find; it reads both 1 GiB files whole. Its byte counts are the rchar/wchar of its processes (read/write ' +
      'system calls on files and on its pipes). Both baselines end with an fdatasync of their destination; ours ' +
      'fdatasyncs the secondary and its digest table once per batch of transfers (transferRegions, up to ' +
      `${cycleBatchBytesMax >> 20} MiB each), then the metadata and the current map.`,
    'The primary was filled with seeded bytes through node:fs before the volume was opened (not sparse: ' +
      `${primaryAllocated} B allocated), and the secondary and rsync replica start as copies of it (the ` +
      "secondary's digest table is left as created, so the volume would call every region it does not send rot: " +
      'the bench reads S only through node:fs).',
  ];
}

export function benchCycle(config: CycleConfig, volumeFiles: CycleVolume, log: Log): SectionResult {
  const checks = new Checks();
  const sizeBytes = config.regions * config.regionSize;
  const dirtyCount = Math.max(1, Math.round(config.regions * config.dirtyFraction));
  const files = prepareBaselines(config, volumeFiles);
  const primaryAllocated = allocatedBytes(files.primaryPath);
  checks.expect(
    'cycle: the primary image is fully written (not sparse)',
    primaryAllocated >= sizeBytes,
    `${primaryAllocated} bytes allocated of ${sizeBytes}`,
  );
  const storage = new CountingStorage(new NodeStorage());
  const volume = ReplicatedVolume.open(storage, volumeFiles.dir);
  storage.take();
  const cold = config.cold && dropCaches();
  const repetitions = new CycleRepetitions({ config, volume, storage, files, cold, dirtyCount }, log);
  for (let repetition = 0; repetition < config.repetitions; repetition++) repetitions.run(repetition);
  volume.close();

  const outcome: CycleOutcome = {
    config,
    repetitions,
    cold,
    dirtyCount,
    sizeBytes,
    metadataBytes: repetitions.lastExpected?.metadataBytes ?? 0,
    digestBytes: repetitions.lastExpected?.digestBytes ?? 0,
    syncCalls: 2 * repetitions.lastBatches + 3,
  };
  checkRepetitions(checks, outcome);
  checkFinalImages(checks, files, outcome, log);
  const regionBytes = dirtyCount * config.regionSize;
  return {
    section: 'cycle cost',
    figures: cycleFigures(outcome),
    checks: checks.list,
    notes: cycleNotes(outcome, primaryAllocated),
    data: {
      regions: config.regions,
      regionSize: config.regionSize,
      dirtyRegions: dirtyCount,
      repetitions: config.repetitions,
      cacheCold: cold,
      expectedBytesRead: regionBytes + outcome.digestBytes,
      expectedBytesWritten: regionBytes + outcome.metadataBytes,
      metadataBytesWritten: outcome.metadataBytes,
      lastCycleCounts: repetitions.lastCounts,
      rsyncCommand: `rsync ${rsyncArgs.join(' ')} PRIMARY REPLICA`,
      ...repetitions.series,
    },
  };
}
