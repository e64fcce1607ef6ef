// Rot (issue 12, item 6): a byte flipped in a synced file, as a failing device
// flips it, after an operation. The volume must then report E_CORRUPT at some
// later step (open, an operation, state(), a read of S) or run its cycles to the
// end with the secondary equal to the primary: it may never go on silently with
// lost or wrong data.
//
// Every file of the volume and of its secondary is flipped except `primary`: the
// primary has no checksum by design (docs/format.md): the client's bytes are the
// truth, and a flipped byte there is a new truth that the next write of the
// region, or the cycle after it, sends. The lock file is not data either.
//
// Where: offsets aimed at each structure (docs/format.md), at the regions the
// exploration writes: each metadata slot's magic, version, sequence, cycle, phase,
// map byte and CRC; each map page's bits, stamp and CRC; each COW entry's fields
// and its data slot; the secondary's header, its image regions and its digest
// table's entries, page index and CRC. A file this does not know is flipped at its
// first and last byte.
//
// When: at a set of prefix states, one per kind of state (phase, C, X, W and the
// sent set over the regions the exploration writes), the first (shortest) found.
// Two ways: flipped while the volume is stopped, then reopened (recovery reads the
// rot), and flipped under the running volume (an operation or state() reads it).
// Then the volume runs two cycles, restarts, runs a third, and S must equal P.
// After rot with a restart, scrub --repair is also crashed at each of its durable
// calls (when the volume has a scrub): the same judgment holds after recovery.

import { posix } from 'node:path';
import { isCowmapError } from '../../impl/errors.ts';
import { cowIndexSize } from '../../impl/cowStore.ts';
import type { ModelState } from '../../model/types.ts';
import type { ArmCrashOptions } from '../crashStorage.ts';
import type { Explorer, FoundFailure, PrefixNode } from '../crashExploration.ts';
import { asFailure, explorationDefaults } from '../crashExploration.ts';
import { OracleFailure } from '../oracle.ts';
import { dropEverything } from './choices.ts';
import type { ExplorationSut } from './explorationSut.ts';
import { volumeDir } from './explorationSut.ts';

export interface RotTarget {
  readonly path: string;
  readonly offset: number;
  /** The structure hit, in words. */
  readonly what: string;
}

const metaFields: ReadonlyArray<[number, string]> = [
  [0, 'magic'],
  [8, 'format version'],
  [16, 'sequence'],
  [48, 'cycle'],
  [56, 'phase'],
  [57, 'current map'],
  [508, 'CRC'],
];
const entryFields: ReadonlyArray<[number, string]> = [
  [0, 'cycle'],
  [8, 'region'],
  [16, 'digest'],
  [48, 'stamp'],
  [60, 'CRC'],
];
const replicaFields: ReadonlyArray<[number, string]> = [
  [0, 'magic'],
  [8, 'format version'],
  [16, 'volume id'],
  [32, 'regions'],
  [508, 'CRC'],
];
const pageBytes = 4096;
const digestEntriesPerPage = 1020;

/** The offsets rot flips in one file, by its name (see the head of this file). */
function targetsOf(
  path: string,
  size: number,
  regionSize: number,
  regions: number,
  active: readonly number[],
): RotTarget[] {
  const name = posix.basename(path);
  const out: RotTarget[] = [];
  const add = (offset: number, what: string) => {
    if (offset >= 0 && offset < size) out.push({ path, offset, what: `${name} ${what}` });
  };
  switch (name) {
    case 'primary':
    case 'lock':
      return [];
    case 'meta':
      for (const slot of [0, 1])
        for (const [offset, field] of metaFields) add(slot * 512 + offset, `slot ${slot} ${field}`);
      return out;
    case 'map0':
    case 'map1':
      for (const region of active) {
        const page = Math.floor(region / (8 * 4080));
        add(
          size >= pageBytes ? page * pageBytes + ((region >> 3) % 4080) : region >> 3,
          `page bits of region ${region}`,
        );
      }
      if (size >= pageBytes) {
        add(4080, 'page 0 stamp');
        add(4092, 'page 0 CRC');
      }
      return out;
    case 'cow': {
      const index = cowIndexSize(regions);
      for (const region of active) {
        for (const [offset, field] of entryFields) add(region * 64 + offset, `entry ${region} ${field}`);
        add(index + region * regionSize, `slot ${region} first byte`);
        add(index + (region + 1) * regionSize - 1, `slot ${region} last byte`);
      }
      return out;
    }
    case 'replica':
      for (const [offset, field] of replicaFields) add(offset, `header ${field}`);
      return out;
    case 'image':
      for (const region of active) {
        add(region * regionSize, `region ${region} first byte`);
        add((region + 1) * regionSize - 1, `region ${region} last byte`);
      }
      return out;
    case 'digests':
      for (const region of active) {
        const page = Math.floor(region / digestEntriesPerPage);
        add(page * pageBytes + (region % digestEntriesPerPage) * 4, `entry of region ${region}`);
      }
      add(4080, 'page 0 index');
      add(4092, 'page 0 CRC');
      return out;
    default:
      add(0, 'first byte');
      add(size - 1, 'last byte');
      return out;
  }
}

/** Every rot target of the volume's files (and its secondary's) as they are in `sut`. */
export function rotTargets(
  sut: ExplorationSut,
  regionSize: number,
  regions: number,
  active: readonly number[],
): RotTarget[] {
  const files = sut.files;
  const targets: RotTarget[] = [];
  for (const path of files.filePaths()) {
    if (!path.startsWith(`${volumeDir}/`)) continue;
    targets.push(...targetsOf(path, files.fileSize(path) ?? 0, regionSize, regions, active));
  }
  return targets;
}

/** The kind of a prefix state, for choosing one state of each kind (see the head of this file). */
export function rotKind(model: ModelState, active: readonly number[]): string {
  const bits = (values: readonly boolean[]) => active.map((region) => (values[region] ? '1' : '0')).join('');
  return `${model.phase} C${bits(model.current)} X${bits(model.next)} W${bits(model.cow.map((copy) => copy !== null))} sent${bits(model.sent)}`;
}

type RotWay = 'restart' | 'running';

/** What a region of S may hold after the next cycle: as it was, or the point in time. */
export interface PointInTime {
  readonly before: readonly string[];
  readonly view: readonly string[];
}

/**
 * What the next cycle may send, with no write in between, as the model says:
 * running, the view of each region (W's copy, else P); idle, P (the swap makes
 * X the new C, W empty). A region may also stay as it was: a rotted map page kept
 * on the evidence that W or X covers a lost bit defers the region to a later
 * cycle (docs/format.md, "Recovery"), which still ends with S = P. Digests, as
 * state() reports them.
 */
export function pointInTimeAfterCycle(model: ModelState): PointInTime {
  const view = model.primary.map((content, region) =>
    model.phase === 'replicating' ? (model.cow[region] ?? content) : content,
  );
  return { before: model.secondary, view };
}

/** Flips at every target of each chosen prefix state, both ways; the first failure, or null. */
export async function exploreRot(explorer: Explorer, nodes: readonly PrefixNode[]): Promise<FoundFailure | null> {
  const sut = explorer.sut;
  const hasScrub = explorer.options.scrubCrashes !== false && scrubOf(explorer) !== null;
  if (explorer.options.scrubCrashes !== false && !hasScrub) {
    explorer.stats.notes.push('no crash inside scrub --repair: the volume class has no scrub({ repair }) yet');
  }
  const scrubStatesMax = explorer.options.scrubStatesMax ?? explorationDefaults.scrubStatesMax;
  for (const [index, node] of nodes.entries()) {
    const unopened = explorer.restoreAt(node);
    if (unopened !== null) return unopened;
    const targets = rotTargets(sut, explorer.geometry.regionSize, explorer.geometry.regions, explorer.activeRegions);
    for (const target of targets) {
      for (const way of ['restart', 'running'] as const) {
        const found = await oneRot(explorer, node, target, way);
        if (found !== null) return found;
      }
      if (hasScrub && index < scrubStatesMax) {
        const found = await crashScrubs(explorer, node, target);
        if (found !== null) return found;
      }
    }
  }
  return null;
}

function rotFailure(node: PrefixNode, label: string, error: unknown): FoundFailure {
  return {
    error: asFailure(error, label),
    node,
    op: null,
    plainOp: null,
    crashAfterIo: null,
    choice: null,
    shape: null,
    steps: [],
    special: label,
  };
}

/** Flips `target` one way, then judges; the failure, or null. */
async function oneRot(
  explorer: Explorer,
  node: PrefixNode,
  target: RotTarget,
  way: RotWay,
): Promise<FoundFailure | null> {
  const sut = explorer.sut;
  const stats = explorer.stats.rot;
  const label = `rot: a flipped byte at ${target.path} offset ${target.offset} (${target.what}), ${way === 'restart' ? 'then a restart' : 'under the running volume'}, after ${explorer.describePath(node.path)}`;
  stats.runs++;
  try {
    const unopened = explorer.restoreAt(node);
    if (unopened !== null) return unopened;
    if (way === 'restart') await sut.crash();
    if (!sut.rot(target.path, target.offset))
      throw new Error(`exploration: no byte at ${target.path} offset ${target.offset} to flip`);
    const verdict = await runToTheEnd(explorer, way === 'restart', label, pointInTimeAfterCycle(node.model));
    if (verdict === 'detected') stats.detected++;
    else stats.healed++;
  } catch (error) {
    return rotFailure(node, label, error);
  } finally {
    explorer.progress();
  }
  return null;
}

/**
 * After rot: (re)opens when asked, runs two cycles, restarts, runs a third, and
 * checks S = P. 'detected' when the volume said E_CORRUPT on the way; any other
 * refusal, an error, or S differing from P at the end is a failure (thrown).
 */
export async function runToTheEnd(
  explorer: Explorer,
  reopen: boolean,
  label: string,
  pointInTime: PointInTime | null,
): Promise<'detected' | 'healed'> {
  const sut = explorer.sut;
  const reopenNow = async (): Promise<boolean> => {
    const reply = await sut.recover();
    if (reply.ok) return true;
    if (reply.code === 'E_CORRUPT') return false;
    throw new OracleFailure(
      'sut',
      `${label}: open says ${reply.code}: ${reply.message}; after rot only E_CORRUPT may refuse`,
    );
  };
  try {
    if (reopen && !(await reopenNow())) return 'detected';
    cycle(sut);
    if (pointInTime !== null) {
      // Every region the first cycle after the flip sent holds the point in time
      // the model says: a volume that did not say E_CORRUPT must not have repaired
      // silently (a rotted COW copy taken for a torn one sends P's new data instead).
      const secondary = sut.openVolume.state().secondary;
      const differing = secondary.flatMap((digest, region) =>
        digest === pointInTime.before[region] || digest === pointInTime.view[region] ? [] : [region],
      );
      if (differing.length > 0) {
        throw new OracleFailure(
          'sut',
          `${label}: the volume never reported E_CORRUPT, and the cycle after the flip left S other than the point in time at region(s) ${differing.join(', ')}`,
        );
      }
    }
    cycle(sut);
    await sut.crash();
    if (!(await reopenNow())) return 'detected';
    cycle(sut);
    const state = sut.openVolume.state();
    const differing = state.primary.flatMap((digest, region) => (digest === state.secondary[region] ? [] : [region]));
    if (differing.length > 0) {
      throw new OracleFailure(
        'sut',
        `${label}: the volume never reported E_CORRUPT, and after three cycles S differs from P at region(s) ${differing.join(', ')}`,
      );
    }
    return 'healed';
  } catch (error) {
    if (isCowmapError(error) && error.code === 'E_CORRUPT') return 'detected';
    if (isCowmapError(error))
      throw new OracleFailure('sut', `${label}: ${error.code} where only E_CORRUPT may refuse: ${error.message}`);
    throw error;
  }
}

/** One cycle on the open volume, called directly: startCycle when idle, a transfer of each region of C, completeCycle. */
function cycle(sut: ExplorationSut): void {
  const volume = sut.openVolume;
  if (volume.state().phase === 'idle') volume.startCycle();
  const current = volume.state().current;
  for (let region = 0; region < current.length; region++) if (current[region] === '1') volume.transfer(region);
  volume.completeCycle();
}

type Scrub = (options: { repair: boolean }) => unknown;

/** The volume's scrub method, when the class has one. */
function scrubOf(explorer: Explorer): Scrub | null {
  const method = (explorer.volumeClass.prototype as unknown as { scrub?: unknown }).scrub;
  return typeof method === 'function' ? (method as Scrub) : null;
}

const scrubCrashModes: ReadonlyArray<{ text: string; arm: Omit<ArmCrashOptions, 'afterIo'> }> = [
  { text: 'process', arm: { mode: 'process' } },
  { text: 'power, keeping nothing unsynced', arm: { mode: 'power', ...dropEverything } },
  { text: 'torn, seed 1', arm: { mode: 'power', seed: 1, torn: true } },
];

/**
 * Rot that open refuses: `cowmap scrub DIR --repair` (scrubDir) must repair what
 * a resend mends, and after it the cycles end with S = P (or open still says
 * E_CORRUPT: what no resend mends, the metadata's evidence rule). Crashed at each
 * of its durable calls, then run again uncrashed, then judged the same way.
 */
async function crashScrubDirs(
  explorer: Explorer,
  node: PrefixNode,
  target: RotTarget,
  base: string,
): Promise<FoundFailure | null> {
  const sut = explorer.sut;
  const stats = explorer.stats.inside.scrub;
  const label = `${base.replace('scrub --repair', 'scrub DIR --repair (open refused the volume)')}`;
  const prepare = async (): Promise<void> => {
    const unopened = explorer.restoreAt(node);
    if (unopened !== null) throw unopened.error;
    await sut.crash();
    sut.rot(target.path, target.offset);
  };
  let io: number;
  try {
    await prepare();
    const result = sut.scrubDirCrashing(null);
    if (result.crashed) throw new Error('exploration: scrubDir crashed with no crash armed');
    io = result.io;
    stats.states++;
    await runToTheEnd(explorer, true, `${label}, then cycles`, null);
  } catch (error) {
    if (isCowmapError(error) && error.code === 'E_CORRUPT') return null;
    return rotFailure(node, label, error);
  }
  const judged = new Set<string>();
  for (let afterIo = 0; afterIo < io; afterIo++) {
    stats.points++;
    for (const how of scrubCrashModes) {
      stats.runs++;
      const crashed = `${label}, crashed after io ${afterIo} of ${io} (${how.text}), then scrub --repair again`;
      try {
        await prepare();
        if (!sut.scrubDirCrashing({ ...how.arm, afterIo }).crashed) continue;
        const key = `${sut.files.digest()}|${sut.carriedSignature()}`;
        if (judged.has(key)) {
          explorer.stats.duplicates++;
          continue;
        }
        judged.add(key);
        stats.states++;
        if (sut.scrubDirCrashing(null).crashed) throw new Error('exploration: scrubDir crashed with no crash armed');
        await runToTheEnd(explorer, true, crashed, null);
      } catch (error) {
        if (isCowmapError(error) && error.code === 'E_CORRUPT') continue;
        return rotFailure(node, crashed, error);
      } finally {
        explorer.progress();
      }
    }
  }
  return null;
}

/** After rot and a restart, scrub --repair crashed at each of its durable calls; then judged as rot is. */
async function crashScrubs(explorer: Explorer, node: PrefixNode, target: RotTarget): Promise<FoundFailure | null> {
  const sut = explorer.sut;
  const stats = explorer.stats.inside.scrub;
  const base = `scrub --repair after a flipped byte at ${target.path} offset ${target.offset} (${target.what}) and a restart, after ${explorer.describePath(node.path)}`;
  const prepare = async (): Promise<boolean> => {
    const unopened = explorer.restoreAt(node);
    if (unopened !== null) throw unopened.error;
    await sut.crash();
    sut.rot(target.path, target.offset);
    return (await sut.recover()).ok;
  };
  let io: number;
  try {
    // Open refused the rot: scrub --repair of the closed volume (scrubDir) is what a user runs then.
    if (!(await prepare())) return crashScrubDirs(explorer, node, target, base);
    const result = sut.runCrashing(null, (volume) => (volume as unknown as { scrub: Scrub }).scrub({ repair: true }));
    io = result.crashed ? 0 : result.io;
  } catch (error) {
    if (isCowmapError(error) && error.code === 'E_CORRUPT') return null;
    return rotFailure(node, base, error);
  }
  const judged = new Set<string>();
  for (let afterIo = 0; afterIo < io; afterIo++) {
    stats.points++;
    for (const how of scrubCrashModes) {
      stats.runs++;
      const label = `${base}, crashed after io ${afterIo} of ${io} (${how.text})`;
      try {
        await prepare();
        const result = sut.runCrashing({ ...how.arm, afterIo }, (volume) =>
          (volume as unknown as { scrub: Scrub }).scrub({ repair: true }),
        );
        if (!result.crashed) continue;
        const key = `${sut.files.digest()}|${sut.carriedSignature()}`;
        if (judged.has(key)) {
          explorer.stats.duplicates++;
          continue;
        }
        judged.add(key);
        stats.states++;
        // scrub --repair may drop a rotted COW copy: that region is not point-in-time for this one cycle (docs/format.md, "Scrub").
        await runToTheEnd(explorer, true, label, null);
      } catch (error) {
        if (isCowmapError(error) && error.code === 'E_CORRUPT') continue;
        return rotFailure(node, label, error);
      } finally {
        explorer.progress();
      }
    }
  }
  return null;
}
