// Rot: a byte flipped in a synced file, as a failing device flips it, after an
// operation. The volume must then report E_CORRUPT at some later step (open, an
// operation, state(), a read of S) or run its cycles to the end with the
// secondary equal to the primary: it may never go on silently with lost or wrong
// data (rotVerdict.ts). Where it flips: rotTargets.ts.
//
// When: at a set of prefix states, one per kind of state (phase, C, X, W and the
// sent set over the regions the exploration writes), the first (shortest) found,
// those with the most to lose first. Two ways: flipped while the volume is
// stopped, then reopened (recovery reads the rot), and flipped under the running
// volume (an operation or state() reads it). After rot with a restart, scrub
// --repair is also crashed at each of its durable calls (when the volume has a
// scrub; scrubCrashes.ts): the same judgment holds after recovery.

import { bits } from '../../model/bits.ts';
import type { ModelState } from '../../model/types.ts';
import type { Explorer } from './explorer.ts';
import type { FoundFailure } from './found.ts';
import { foundInWords } from './found.ts';
import { explorationDefaults } from './options.ts';
import type { PrefixNode } from './prefixes.ts';
import type { RotTarget } from './rotTargets.ts';
import { rotTargets } from './rotTargets.ts';
import { pointInTimeAfterCycle, runToTheEnd } from './rotVerdict.ts';
import { crashScrubs, scrubOf } from './scrubCrashes.ts';

type RotWay = 'restart' | 'running';

/** The kind of a prefix state, for choosing one state of each kind (see the head of this file). */
export function rotKind(model: ModelState, active: readonly number[]): string {
  const activeBits = (values: readonly boolean[]) => bits(active.map((region) => values[region] === true));
  const copies = model.cow.map((copy) => copy !== null);
  return `${model.phase} C${activeBits(model.current)} X${activeBits(model.next)} W${activeBits(copies)} sent${activeBits(model.sent)}`;
}

/**
 * Prefix states for rot, those with the most to lose first: a running cycle with
 * copies in W, bits in C and X, regions sent (stable among equals: shortest first).
 */
export function richestFirst(nodes: readonly PrefixNode[]): PrefixNode[] {
  const count = (values: readonly boolean[]) => values.filter((value) => value).length;
  const score = (model: ModelState) =>
    count(model.current) +
    count(model.next) +
    2 * count(model.cow.map((copy) => copy !== null)) +
    count(model.sent) +
    (model.phase === 'replicating' ? 1 : 0);
  return nodes
    .map((node, index) => ({ node, index, score: score(node.model) }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .map(({ node }) => node);
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

/** Flips `target` one way, then judges; the failure, or null. */
async function oneRot(
  explorer: Explorer,
  node: PrefixNode,
  target: RotTarget,
  way: RotWay,
): Promise<FoundFailure | null> {
  const sut = explorer.sut;
  const stats = explorer.stats.rot;
  const when = way === 'restart' ? 'then a restart' : 'under the running volume';
  const label = `rot: a flipped byte at ${target.path} offset ${target.offset} (${target.what}), ${when}, after ${explorer.describePath(node.path)}`;
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
    return foundInWords(node, label, error);
  } finally {
    explorer.progress();
  }
  return null;
}
