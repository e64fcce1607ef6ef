// 8. A cycle to an NBD secondary against nbdcopy of the same bytes to the same
// server (docs/bench.md, "Remote"): a volume with a seeded 1% of its regions dirty
// (scattered), one cycle to `nbdkit file` on a file of the bench's dir, over a Unix
// socket and over TCP 127.0.0.1, with and without nbdkit's delay filter; against
// `nbdcopy --flush` of a file of the dirty bytes into another export of the same
// server. In each repetition ours and nbdcopy take turns (the order rotates); the
// ratio is per repetition. Skipped, saying why, without nbdkit or nbdcopy.

import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { volumeSize, type Geometry } from '../impl/geometry.ts';
import { type LinkOptions, linkOptionsWith } from '../impl/remote/linkOptions.ts';
import { freePort } from './nbdServer.ts';
import {
  copyExportPath,
  createRemoteVolume,
  type DirtySet,
  drawDirty,
  exportNames,
  oursCycle,
  oursWarmCycle,
  regionsNotArrived,
  runNbdcopy,
  sizedFile,
  writeDirty,
  writeDirtyFile,
} from './remoteCycle.ts';
import { type ConfigRuns, coldFigure, remoteFigure, type Transport } from './remoteFigures.ts';
import { exportUrl, type RemoteEndpoint, RemoteServer } from './remoteServer.ts';
import { Checks, type Log, type SectionResult } from './report.ts';
import { runInTurn } from './rotation.ts';
import { hashFile, loadAverages } from './system.ts';

export interface RemoteConfig {
  readonly root: string;
  readonly seed: number;
  readonly regions: number;
  readonly regionSize: number;
  readonly dirtyFraction: number;
  readonly repetitions: number;
  readonly delayMs: number;
  /** The replica's link options over the defaults (impl/remote/linkOptions.ts). */
  readonly link: Partial<LinkOptions>;
}

function toolVersion(command: string): string | null {
  const result = spawnSync(command, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (result.error !== undefined || result.status !== 0) return null;
  return result.stdout.trim().split('\n')[0]?.trim() ?? null;
}

/** A transport's volume: its directory, its export's file and name, and where its server listens. */
interface TransportSetup {
  readonly transport: Transport;
  readonly endpoint: RemoteEndpoint;
  readonly volumeDir: string;
  readonly exportName: string;
  readonly exportFile: string;
  created: boolean;
}

interface SectionState {
  readonly config: RemoteConfig;
  readonly geometry: Geometry;
  readonly link: LinkOptions;
  readonly exportDir: string;
  readonly dirtyFile: string;
  readonly failures: string[];
  readonly log: Log;
}

async function setups(dir: string): Promise<TransportSetup[]> {
  const tcpPort = await freePort();
  const endpoints: RemoteEndpoint[] = [
    { transport: 'unix', socketPath: join(dir, 'nbd.sock') },
    { transport: 'tcp', port: tcpPort },
  ];
  return endpoints.map((endpoint) => ({
    transport: endpoint.transport,
    endpoint,
    volumeDir: join(dir, `volume-${endpoint.transport}`),
    exportName: `secondary-${endpoint.transport}.img`,
    exportFile: join(dir, 'exports', `secondary-${endpoint.transport}.img`),
    created: false,
  }));
}

/** One repetition: ours cold, ours warm and nbdcopy in turn, on the same dirty bytes, each checked. */
async function repetition(state: SectionState, setup: TransportSetup, runs: ConfigRuns, sets: DirtySets) {
  const { dirty, warmup } = sets;
  const sourceHash = writeDirtyFile(state.dirtyFile, dirty);
  runs.load.push(loadAverages()[0]!);
  const arrived = (who: string) => {
    const missing = regionsNotArrived(setup.exportFile, dirty, state.geometry.regionSize);
    if (missing.length > 0)
      state.failures.push(
        `${setup.transport} ${who}: ${missing.length} dirty region(s) not in the export, first ${missing[0]}`,
      );
  };
  const ours = async () => {
    writeDirty(setup.volumeDir, dirty, state.link);
    runs.ours.push(oursCycle(setup.volumeDir, state.link));
    arrived('ours');
  };
  const oursWarm = async () => {
    runs.oursWarm.push(oursWarmCycle(setup.volumeDir, state.link, warmup, dirty));
    arrived('ours (warm)');
  };
  const theirs = async () => {
    runs.nbdcopySeconds.push(await runNbdcopy(state.dirtyFile, exportUrl(setup.endpoint, exportNames.copy)));
    if (hashFile(copyExportPath(state.exportDir)) !== sourceHash)
      state.failures.push(`${setup.transport}: after nbdcopy, the copy export differs from the dirty bytes`);
  };
  await runInTurn([ours, oursWarm, theirs], runs.nbdcopySeconds.length);
}

/** A repetition's dirty regions, and the other regions the warm contender's untimed first cycle sends. */
interface DirtySets {
  readonly dirty: DirtySet;
  readonly warmup: DirtySet;
}

function dirtySets(state: SectionState, seed: number): DirtySets {
  const { geometry, config } = state;
  return {
    dirty: drawDirty(geometry, config.dirtyFraction, seed),
    warmup: drawDirty(geometry, config.dirtyFraction, seed + 1),
  };
}

/** One server configuration: the server started, a warm-up repetition, then the timed ones. */
async function runConfig(state: SectionState, setup: TransportSetup, delayMs: number, index: number) {
  const { config, geometry } = state;
  const server = await RemoteServer.start(state.exportDir, setup.endpoint, delayMs);
  const empty = () => ({ transport: setup.transport, delayMs, ours: [], oursWarm: [], nbdcopySeconds: [], load: [] });
  const runs: ConfigRuns = empty();
  try {
    if (!setup.created) {
      createRemoteVolume(
        setup.volumeDir,
        exportUrl(setup.endpoint, setup.exportName),
        setup.exportFile,
        geometry,
        state.link,
      );
      setup.created = true;
    }
    // Warm-up: the export files' blocks allocated and both clients' code paths run once (not counted).
    await repetition(state, setup, empty(), dirtySets(state, config.seed + 7919 * (index + 1)));
    for (let turn = 0; turn < config.repetitions; turn++) {
      await repetition(state, setup, runs, dirtySets(state, config.seed + 1000 * index + 4 * turn));
      logRepetition(state, runs, turn);
    }
  } finally {
    await server.stop();
  }
  return runs;
}

function logRepetition(state: SectionState, runs: ConfigRuns, turn: number): void {
  const ms = (seconds: number) => `${(seconds * 1000).toFixed(1)} ms`;
  const cold = runs.ours.at(-1)!;
  state.log(
    `  remote ${runs.transport} ${runs.delayMs > 0 ? `delay ${runs.delayMs} ms` : 'no delay'} ` +
      `${turn + 1}/${state.config.repetitions}: ours ${ms(cold.totalSeconds)} (cycle ${ms(cold.cycleSeconds)}), ` +
      `warm ${ms(runs.oursWarm.at(-1)!.cycleSeconds)}, nbdcopy ${ms(runs.nbdcopySeconds.at(-1)!)} ` +
      `(load ${runs.load.at(-1)})`,
  );
}

function sectionNotes(config: RemoteConfig, state: SectionState, dirtyBytes: number, tools: string[]): string[] {
  const { regions, regionSize } = config;
  const link = state.link;
  return [
    `remote: a volume of ${regions} regions of ${regionSize / 1024} KiB with ${Math.round(config.dirtyFraction * 100)}% ` +
      `of its regions dirty (${dirtyBytes} bytes, scattered, seeded), one cycle to nbdkit file dir= on the bench's dir, ` +
      `over a Unix socket and over TCP 127.0.0.1, with and without the delay filter (${config.delayMs} ms on ` +
      'delay-write, delay-read and delay-zero: the filter has no FLUSH delay); against nbdcopy --flush (its defaults) ' +
      'of a file of the dirty bytes into another export of the same server. Ours: open + runCycle + close in ' +
      "process (the link's worker thread starts loading at open, the link connects in the cycle's first batch: the " +
      "worker's start, the socket's connect, the handshake and the control block read all included); ours warm: " +
      'the cycle alone, in an open whose first, ' +
      'untimed cycle connected the link; nbdcopy: its process from spawn to exit (its connects, handshakes and ' +
      `FLUSH included). A warm-up repetition per configuration is not counted; ${config.repetitions} repetitions ` +
      'each, the order of the three rotating; every ratio per repetition. Link: inFlightMax ' +
      `${link.inFlightMax}, requestTimeoutMs ${link.requestTimeoutMs}. Tools: ${tools.join('; ')}.`,
  ];
}

export async function benchRemote(config: RemoteConfig, log: Log): Promise<SectionResult> {
  const tools = { nbdkit: toolVersion('nbdkit'), nbdcopy: toolVersion('nbdcopy') };
  const missingTools = Object.entries(tools).filter(([, version]) => version === null);
  if (missingTools.length > 0) {
    const missing = `needs ${missingTools.map(([name]) => name).join(' and ')}`;
    log(`  remote: skipped: ${missing}`);
    return {
      section: 'remote',
      figures: [],
      checks: [],
      notes: [`remote: skipped: ${missing}.`],
      data: { skipped: missing },
    };
  }
  const dir = join(config.root, 'remote');
  const exportDir = join(dir, 'exports');
  mkdirSync(exportDir, { recursive: true });
  const geometry = { regions: config.regions, regionSize: config.regionSize };
  const state: SectionState = {
    config,
    geometry,
    link: linkOptionsWith(config.link),
    exportDir,
    dirtyFile: join(dir, 'dirty.bin'),
    failures: [],
    log,
  };
  const dirtyBytes = drawDirty(geometry, config.dirtyFraction, config.seed).regions.length * config.regionSize;
  sizedFile(copyExportPath(exportDir), dirtyBytes);
  const all: ConfigRuns[] = [];
  let index = 0;
  for (const setup of await setups(dir)) {
    for (const delayMs of [0, config.delayMs]) all.push(await runConfig(state, setup, delayMs, index++));
  }
  const checks = new Checks();
  checks.expectAll('remote: every dirty region arrived, every copy arrived', state.failures, 'all');
  const sizes = { dirtyBytes, volumeBytes: volumeSize(geometry) };
  const target = { text: '<= 1.25', atMost: 1.25 };
  const figures = [
    ...all.map((runs) => remoteFigure(runs, sizes, runs.delayMs > 0 ? target : null)),
    ...all.map((runs) => coldFigure(runs, sizes)),
  ];
  const toolLines = Object.entries(tools).map(([name, version]) => `${name}: ${version}`);
  return {
    section: 'remote',
    figures,
    checks: checks.list,
    notes: sectionNotes(config, state, dirtyBytes, toolLines),
    data: { tools, link: state.link, runs: all },
  };
}
