// 7. `cowmap serve` over NBD against nbdkit's file plugin (and qemu-nbd's, beside
// it), with fio through its nbd engine and nbdcopy, on images of the same kind and
// size on the bench's dir (docs/bench.md, "NBD"). Each repetition gives every
// server a turn (nbdTurns.ts), in an order that rotates, so that a drift of load
// or of the disk hits all of them; every ratio is ours over nbdkit's in the same
// repetition. The first write over its floor is measured in process first, with no
// server running. Skipped, saying why, without fio's nbd engine or nbdkit.

import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, fdatasyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileNames } from '../impl/layout.ts';
import { cycleFigures, fioFigures, firstWriteFigure, nbdcopyFigure, type RunsByServer } from './nbdFigures.ts';
import { measureFirstWrites } from './nbdFirstWrite.ts';
import { describeNbdTools, findNbdTools, missingNbdTools, type NbdTools } from './nbdTools.ts';
import {
  type CowmapCycles,
  cowmapTurn,
  emptyServerRuns,
  type NbdJobsConfig,
  plainServerTurn,
  type TurnContext,
} from './nbdTurns.ts';
import { Checks, type Log, type SectionResult } from './report.ts';
import { runInTurn } from './rotation.ts';
import { SeededBytes } from './seededBytes.ts';
import { hashFile, loadAverages } from './system.ts';

export interface NbdConfig extends NbdJobsConfig {
  readonly root: string;
  readonly repoRoot: string;
  readonly seed: number;
  readonly regions: number;
  readonly regionSize: number;
  readonly repetitions: number;
  /** In-process first writes (nbdFirstWriteOverFloor), in chunks of chunkRegions. */
  readonly firstWrites: number;
  readonly chunkRegions: number;
}

interface Images {
  readonly cowmapDir: string;
  readonly nbdkitFile: string;
  readonly qemuFile: string;
  readonly source: { readonly path: string; readonly sha256: string };
}

function writeSeededFile(path: string, sizeBytes: number, seed: number): void {
  const fd = openSync(path, 'wx');
  try {
    const bytes = new SeededBytes(seed);
    const chunkBytes = 8 << 20;
    for (let position = 0; position < sizeBytes; position += chunkBytes) {
      const chunk = bytes.next(Math.min(chunkBytes, sizeBytes - position));
      if (writeSync(fd, chunk, 0, chunk.length, position) !== chunk.length) throw new Error(`short write to ${path}`);
    }
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The images: one of seeded bytes copied to every server (cowmap's primary and,
 * as after a first full synchronisation, its secondary), and another of random
 * bytes for nbdcopy. cowmap's volume is made by `cowmap init`.
 */
function prepareImages(config: NbdConfig): Images {
  const dir = join(config.root, 'nbd');
  mkdirSync(dir);
  const sizeBytes = config.regions * config.regionSize;
  const base = join(dir, 'base.img');
  writeSeededFile(base, sizeBytes, config.seed);
  const source = join(dir, 'source.img');
  writeSeededFile(source, sizeBytes, config.seed + 1);
  const cowmapDir = join(dir, 'cowmap');
  const init = spawnSync(
    process.execPath,
    [
      join('bin', 'cowmap.js'),
      'init',
      cowmapDir,
      '--regions',
      String(config.regions),
      '--region-size',
      String(config.regionSize),
    ],
    { cwd: config.repoRoot, encoding: 'utf8' },
  );
  if (init.status !== 0) throw new Error(`cowmap init: exit ${init.status}: ${init.stderr.trim()}`);
  const files = [
    join(cowmapDir, fileNames.primary),
    join(cowmapDir, fileNames.defaultSecondary, fileNames.replicaImage),
    join(dir, 'nbdkit.img'),
    join(dir, 'qemu.img'),
  ];
  for (const file of files) copyFileSync(base, file);
  return { cowmapDir, nbdkitFile: files[2]!, qemuFile: files[3]!, source: { path: source, sha256: hashFile(source) } };
}

function sectionNotes(config: NbdConfig, tools: NbdTools): string[] {
  const sizeMiB = (config.regions * config.regionSize) / (1 << 20);
  return [
    `NBD: ${config.repetitions} repetitions; in each, cowmap serve, nbdkit file and qemu-nbd -f raw take turns ` +
      `(the order rotates), each on its own ${sizeMiB} MiB image (${config.regions} regions of ` +
      `${config.regionSize / 1024} KiB for cowmap) on 127.0.0.1. fio --ioengine=nbd, ${config.jobSeconds} s per job: ` +
      'randwrite 4k, write 1M, both with and without --fsync=1, randread 4k, all iodepth 8, then nbdcopy --flush of ' +
      'an image of random bytes (the export then compared with it), then the steady job: randwrite 4k iodepth 8 ' +
      `--fsync=1 on the first ${config.steadyAreaBytes >> 20} MiB, written once first; cowmap serves the main jobs ` +
      'with --cycle-every 1 and the steady job from a second start with --cycle-every 0. Ratios are ours over ' +
      "nbdkit's in the same repetition. nbdFirstWriteOverFloor: in process, before the servers, " +
      `${config.firstWrites} first writes in chunks of ${config.chunkRegions}, ours and the floor taking turns. ` +
      `Tools: ${describeNbdTools(tools)}.`,
  ];
}

/** The in-process first writes, with the load average before and after. */
function firstWriteOverFloor(config: NbdConfig, checks: Checks, log: Log) {
  const load = [loadAverages()[0]!];
  const outcome = measureFirstWrites(config);
  load.push(loadAverages()[0]!);
  checks.expectAll(
    'nbd: each first write was preserved in the cycle and reads back',
    outcome.failures,
    `${config.firstWrites} writes`,
  );
  const figure = firstWriteFigure(outcome, config, load);
  log(`  first write over its floor: ${figure.summary.median.toFixed(2)} (${figure.detail})`);
  return { figure, outcome };
}

export async function benchNbd(config: NbdConfig, log: Log): Promise<SectionResult> {
  const tools = findNbdTools();
  const missing = missingNbdTools(tools);
  if (missing !== null) {
    log(`  nbd: skipped: ${missing}`);
    return {
      section: 'nbd',
      figures: [],
      checks: [],
      notes: [`NBD: skipped: ${missing}.`],
      data: { skipped: missing },
    };
  }
  const checks = new Checks();
  const first = firstWriteOverFloor(config, checks, log);
  const images = prepareImages(config);
  const failures: string[] = [];
  const context: TurnContext = {
    jobs: config,
    repoRoot: config.repoRoot,
    clock: process.hrtime.bigint(),
    source: tools.nbdcopy === null ? null : images.source,
    failures,
    log,
  };
  const runs: RunsByServer = { cowmap: emptyServerRuns(), nbdkit: emptyServerRuns() };
  if (tools.qemuNbd !== null) runs.qemuNbd = emptyServerRuns();
  const cycles: CowmapCycles = { randwrite: [], randwriteFsync: [], steady: [] };
  const turns = [
    () => cowmapTurn(images.cowmapDir, runs.cowmap, cycles, context),
    () =>
      plainServerTurn(
        'nbdkit',
        'nbdkit',
        (port) => ['-f', '--exit-with-parent', '-i', '127.0.0.1', '-p', String(port), 'file', images.nbdkitFile],
        images.nbdkitFile,
        runs.nbdkit,
        context,
      ),
    ...(runs.qemuNbd === undefined
      ? []
      : [
          () =>
            plainServerTurn(
              'qemu-nbd',
              'qemu-nbd',
              (port) => ['-f', 'raw', '-t', '-b', '127.0.0.1', '-p', String(port), images.qemuFile],
              images.qemuFile,
              runs.qemuNbd!,
              context,
            ),
        ]),
  ];
  for (let repetition = 0; repetition < config.repetitions; repetition++) {
    await runInTurn(turns, repetition);
    log(`  nbd repetition ${repetition + 1}/${config.repetitions}: ${describeRepetition(runs, repetition)}`);
  }
  checks.expectAll('nbd: every job ran, every copy arrived, every server stopped on SIGTERM', failures, 'all');
  const figures = [
    ...fioFigures(runs, cycles),
    ...nbdcopyFigure(runs, config.regions * config.regionSize),
    ...cycleFigures(cycles),
    first.figure,
  ];
  return {
    section: 'nbd',
    figures,
    checks: checks.list,
    notes: sectionNotes(config, tools),
    data: { tools, runs, cycles, firstWrite: { ...first.outcome.series, oursIo: first.outcome.oursIo } },
  };
}

/** One repetition in a log line: each server's randwrite and steady IOPS and its turn's load. */
function describeRepetition(runs: RunsByServer, repetition: number): string {
  return (['cowmap', 'nbdkit', 'qemuNbd'] as const)
    .filter((name) => runs[name] !== undefined)
    .map((name) => {
      const server = runs[name]!;
      const iops = (job: 'randwrite' | 'randwriteFsync' | 'steady') =>
        Math.round(server.fio[job][repetition]?.iops ?? Number.NaN);
      return (
        `${name} randwrite ${iops('randwrite')}, fsync ${iops('randwriteFsync')}, steady ${iops('steady')} IOPS ` +
        `(load ${server.load[repetition]?.toFixed(2)})`
      );
    })
    .join('; ');
}
