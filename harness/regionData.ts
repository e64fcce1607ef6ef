// The data generated writes carry: whole regions of seeded random bytes, and
// near-copies of content written earlier in the same run that differ from it
// only in the last byte, in one middle sector or in the last sector, and now and
// then a region of zeros (a region written back to its initial content).
//
// Why: short labels padded with zeros let pass an implementation that writes
// only the first sector of a region, copies up to the first zero byte, or
// compares a prefix to skip "unchanged" writes. Random bytes hold zeros anywhere
// and differ in every sector; a near-copy differs from what the region (or the
// COW copy) already holds in one place only, far from the start.
//
// A recipe is a fast-check value (seeds and choices), so that a seed and a path
// give the same bytes again and shrinking works; the bytes are made from it at
// run time against the contents the run has written so far (RunContents).

import fc from 'fast-check';
import { sectorSize } from '../impl/geometry.ts';
import { Prng } from './prng.ts';

export type NearChange = 'lastByte' | 'middleSector' | 'lastSector';

export type ContentRecipe =
  | { readonly kind: 'random'; readonly seed: number }
  | {
      readonly kind: 'near';
      /** 0: the content last written to the region itself; k > 0: the k-th most recent content written in the run. */
      readonly base: number;
      readonly change: NearChange;
      readonly seed: number;
    }
  | { readonly kind: 'zero' };

/** Content with the short name messages show it by (`r3`, `r3~last`, `r3~s64`; `0` for zeros). */
export interface NamedContent {
  readonly bytes: Uint8Array;
  readonly name: string;
}

/** Recent contents a near-copy can start from. */
export const recentContentsMax = 8;
const nameChangesMax = 2;

const seedArbitrary = fc.integer({ min: 0, max: 0x7fff_ffff });

/** Random content and near-copies about equally, zeros now and then. Shrinks towards random content of seed 0. */
export function contentRecipeArbitrary(): fc.Arbitrary<ContentRecipe> {
  const random = seedArbitrary.map((seed): ContentRecipe => ({ kind: 'random', seed }));
  const near = fc
    .tuple(
      fc.integer({ min: 0, max: recentContentsMax }),
      fc.constantFrom<NearChange[]>('lastByte', 'middleSector', 'lastSector'),
      seedArbitrary,
    )
    .map(([base, change, seed]): ContentRecipe => ({ kind: 'near', base, change, seed }));
  const zero = fc.constant<ContentRecipe>({ kind: 'zero' });
  return fc.oneof({ arbitrary: random, weight: 4 }, { arbitrary: near, weight: 4 }, { arbitrary: zero, weight: 1 });
}

/** Fills `bytes` from the generator, four bytes a draw. */
function fillRandom(bytes: Uint8Array, prng: Prng): void {
  for (let offset = 0; offset < bytes.length; offset += 4) {
    let word = prng.nextUint32();
    for (let i = offset; i < Math.min(offset + 4, bytes.length); i++) {
      bytes[i] = word & 0xff;
      word >>>= 8;
    }
  }
}

/** `regionSize` bytes of seeded random content. */
export function randomContent(seed: number, regionSize: number): Uint8Array {
  const bytes = new Uint8Array(regionSize);
  fillRandom(bytes, new Prng(seed));
  return bytes;
}

/** The sector a change goes into: the middle one, or the last (the only one in a one-sector region). */
export function changedSector(change: Exclude<NearChange, 'lastByte'>, regionSize: number): number {
  const sectors = Math.ceil(regionSize / sectorSize);
  return change === 'lastSector' ? sectors - 1 : Math.floor(sectors / 2);
}

/** A copy of `base` that differs from it exactly in the last byte, or only inside one sector (and there in at least one byte). */
export function nearCopy(base: Uint8Array, change: NearChange, seed: number): Uint8Array {
  const bytes = base.slice();
  if (bytes.length === 0) return bytes;
  const prng = new Prng(seed);
  if (change === 'lastByte') {
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ (1 + prng.nextInt(255));
    return bytes;
  }
  const start = changedSector(change, bytes.length) * sectorSize;
  const sector = bytes.subarray(start, Math.min(start + sectorSize, bytes.length));
  fillRandom(sector, prng);
  // Random bytes equal to the old sector are as likely as a collision of 4096 bits; still, say "differs" only when true.
  const last = sector.length - 1;
  if (sector.every((byte, i) => byte === base[start + i])) sector[last] = sector[last]! ^ 0xff;
  return bytes;
}

function changeName(change: NearChange, regionSize: number): string {
  return change === 'lastByte' ? 'last' : `s${changedSector(change, regionSize)}`;
}

/** A near-copy's name: its base's, then the change; past two changes only the first and the last show. */
function nearName(baseName: string, change: string): string {
  const parts = baseName.split('~');
  if (parts.length > nameChangesMax) return `${parts[0]}~…~${change}`;
  return `${baseName}~${change}`;
}

/**
 * The contents one run has written, to make near-copies from: the last content
 * written to each region and the few most recent ones. Bounded by the regions
 * written and recentContentsMax.
 */
export class RunContents {
  private readonly recent: NamedContent[] = [];
  private readonly byRegion = new Map<number, NamedContent>();
  private randomCount = 0;
  readonly zero: NamedContent;

  constructor(readonly regionSize: number) {
    this.zero = { bytes: new Uint8Array(regionSize), name: '0' };
  }

  /** The content a recipe gives for a write to `region`, given what the run wrote before. */
  make(recipe: ContentRecipe, region: number): NamedContent {
    switch (recipe.kind) {
      case 'zero':
        return this.zero;
      case 'random':
        return { bytes: randomContent(recipe.seed, this.regionSize), name: `r${++this.randomCount}` };
      case 'near': {
        const base = recipe.base === 0 ? this.byRegion.get(region) : this.recent[this.recent.length - recipe.base];
        // Nothing written yet to start from: the region's initial zeros.
        const from = base ?? this.zero;
        return {
          bytes: nearCopy(from.bytes, recipe.change, recipe.seed),
          name: nearName(from.name, changeName(recipe.change, this.regionSize)),
        };
      }
    }
  }

  /** Records a write (whether or not the implementation took it: this is only where near-copies start from). */
  noteWritten(region: number, content: NamedContent): void {
    this.byRegion.set(region, content);
    this.recent.push(content);
    if (this.recent.length > recentContentsMax) this.recent.shift();
  }
}
