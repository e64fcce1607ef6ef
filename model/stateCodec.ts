// The explorer's state identity: a model state packed into one number (mixed
// radix), so that a visited set of millions of states fits in a Map of numbers.

import { valueLabel } from './exploreEvents.ts';
import type { Content, Geometry, ModelState } from './types.ts';

/**
 * Packs a state into one number (mixed radix, per region: P, S, C, X, W, sent,
 * P@swap and, when the consistent image is modelled, D; then phase and crashed).
 * The explorer's bounds keep it below 2^53.
 *
 * Without the consistent image (`consistent` false) D is not part of the key and
 * decodes as S: the far side's image is then taken to be the secondary at every
 * state reached, which keeps the state space of a secondary updated in place while
 * the transitions' and crash outcomes' INV-DR checks still run on each step.
 */
export class StateCodec {
  private readonly contentIndex: Map<Content, number>[] = [];
  private readonly contents: Content[][] = [];
  private readonly valueRadix: number;
  private readonly regionRadix: number;

  constructor(
    readonly geometry: Geometry,
    values: number,
    readonly consistent: boolean,
  ) {
    this.valueRadix = values + 1;
    this.regionRadix = this.valueRadix ** (consistent ? 4 : 3) * 2 * 2 * 2 * (this.valueRadix + 1);
    if (this.regionRadix ** geometry.regions * 4 > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`explore: ${geometry.regions} regions of ${values} values do not fit a state key`);
    }
    for (let region = 0; region < geometry.regions; region++) {
      const labels = [''];
      for (let value = 1; value <= values; value++) labels.push(valueLabel(region, value, geometry.regions));
      this.contents.push(labels);
      this.contentIndex.push(new Map(labels.map((label, index) => [label, index])));
    }
  }

  private index(region: number, content: Content): number {
    const found = this.contentIndex[region]!.get(content);
    if (found === undefined)
      throw new Error(`explore: region ${region} holds content '${content}' that no event writes`);
    return found;
  }

  encode(state: ModelState): number {
    let key = 0;
    const v = this.valueRadix;
    for (let region = this.geometry.regions - 1; region >= 0; region--) {
      const cow = state.cow[region]!;
      const atSwap = state.primaryAtSwap === null ? 0 : this.index(region, state.primaryAtSwap[region]!);
      let digit = this.index(region, state.primary[region]!);
      digit = digit * v + this.index(region, state.secondary[region]!);
      digit = digit * 2 + (state.current[region] ? 1 : 0);
      digit = digit * 2 + (state.next[region] ? 1 : 0);
      digit = digit * (v + 1) + (cow === null ? 0 : this.index(region, cow) + 1);
      digit = digit * 2 + (state.sent[region] ? 1 : 0);
      digit = digit * v + atSwap;
      if (this.consistent) digit = digit * v + this.index(region, state.consistent[region]!);
      key = key * this.regionRadix + digit;
    }
    return (key * 2 + (state.phase === 'replicating' ? 1 : 0)) * 2 + (state.crashed ? 1 : 0);
  }

  decode(key: number): ModelState {
    const regions = this.geometry.regions;
    const v = this.valueRadix;
    const crashed = key % 2 === 1;
    key = Math.floor(key / 2);
    const phase = key % 2 === 1 ? 'replicating' : 'idle';
    key = Math.floor(key / 2);
    const primary: Content[] = [];
    const secondary: Content[] = [];
    const current: boolean[] = [];
    const next: boolean[] = [];
    const cow: (Content | null)[] = [];
    const sent: boolean[] = [];
    const atSwap: Content[] = [];
    const consistent: Content[] = [];
    for (let region = 0; region < regions; region++) {
      let digit = key % this.regionRadix;
      key = Math.floor(key / this.regionRadix);
      const labels = this.contents[region]!;
      if (this.consistent) {
        consistent.push(labels[digit % v]!);
        digit = Math.floor(digit / v);
      }
      atSwap.push(labels[digit % v]!);
      digit = Math.floor(digit / v);
      sent.push(digit % 2 === 1);
      digit = Math.floor(digit / 2);
      const cowDigit = digit % (v + 1);
      cow.push(cowDigit === 0 ? null : labels[cowDigit - 1]!);
      digit = Math.floor(digit / (v + 1));
      next.push(digit % 2 === 1);
      digit = Math.floor(digit / 2);
      current.push(digit % 2 === 1);
      digit = Math.floor(digit / 2);
      secondary.push(labels[digit % v]!);
      primary.push(labels[Math.floor(digit / v)]!);
    }
    return {
      geometry: this.geometry,
      phase,
      crashed,
      primary,
      secondary,
      current,
      next,
      cow,
      sent,
      primaryAtSwap: phase === 'idle' ? null : atSwap,
      consistent: this.consistent ? consistent : secondary.slice(),
    };
  }
}
