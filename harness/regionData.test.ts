import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  changedSector,
  contentRecipeArbitrary,
  nearCopy,
  randomContent,
  recentContentsMax,
  RunContents,
} from './regionData.ts';
import type { ContentRecipe } from './regionData.ts';

/** The byte offsets where two equal-length contents differ. */
function differences(a: Uint8Array, b: Uint8Array): number[] {
  assert.equal(a.length, b.length);
  const at: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) at.push(i);
  return at;
}

describe('region data', () => {
  it('random content fills the region, is the same for the same seed and differs for another', () => {
    const a = randomContent(42, 4096);
    assert.equal(a.length, 4096);
    assert.deepEqual(randomContent(42, 4096), a);
    assert.ok(differences(a, randomContent(43, 4096)).length > 4000);
    // Zeros anywhere and every byte value: nothing stops at a zero byte or a first sector.
    assert.ok(a.indexOf(0) >= 0);
    assert.ok(new Set(a).size > 250);
    assert.ok(differences(a.subarray(3584), new Uint8Array(512)).length > 500, 'the last sector is not zeros');
  });

  it('a near-copy differs only in the last byte, or only inside the middle or the last sector', () => {
    for (const regionSize of [512, 4096, 65536]) {
      const base = randomContent(7, regionSize);
      const last = differences(base, nearCopy(base, 'lastByte', 1));
      assert.deepEqual(last, [regionSize - 1]);
      for (const change of ['middleSector', 'lastSector'] as const) {
        const sector = changedSector(change, regionSize);
        const changed = differences(base, nearCopy(base, change, 1));
        assert.ok(changed.length > 0, `${regionSize} ${change}: no difference`);
        assert.ok(
          changed.every((offset) => Math.floor(offset / 512) === sector),
          `${regionSize} ${change}: differs outside sector ${sector}`,
        );
      }
      assert.equal(changedSector('lastSector', regionSize), regionSize / 512 - 1);
    }
    assert.equal(changedSector('middleSector', 65536), 64);
    assert.equal(changedSector('middleSector', 512), 0);
    // Of zeros, too (the first near-copy of a region never written).
    assert.deepEqual(differences(new Uint8Array(512), nearCopy(new Uint8Array(512), 'lastByte', 9)), [511]);
  });

  it('a run makes near-copies of what it wrote, names them after it, and remembers a bounded number', () => {
    const contents = new RunContents(4096);
    const first = contents.make({ kind: 'random', seed: 1 }, 3);
    assert.equal(first.name, 'r1');
    contents.noteWritten(3, first);
    const again = contents.make({ kind: 'near', base: 0, change: 'lastByte', seed: 5 }, 3);
    assert.equal(again.name, 'r1~last');
    assert.deepEqual(differences(first.bytes, again.bytes), [4095]);
    contents.noteWritten(3, again);
    const sector = contents.make({ kind: 'near', base: 0, change: 'middleSector', seed: 5 }, 3);
    assert.equal(sector.name, 'r1~last~s4');
    contents.noteWritten(3, sector);
    assert.equal(contents.make({ kind: 'near', base: 0, change: 'lastSector', seed: 5 }, 3).name, 'r1~…~s7');
    // Another region, from the most recent content written anywhere.
    assert.equal(contents.make({ kind: 'near', base: 3, change: 'lastByte', seed: 5 }, 8).name, 'r1~last');
    // Nothing written to the region yet: a near-copy of zeros.
    assert.equal(contents.make({ kind: 'near', base: 0, change: 'lastByte', seed: 5 }, 9).name, '0~last');
    assert.equal(
      contents.make({ kind: 'zero' }, 9).bytes.every((byte) => byte === 0),
      true,
    );
    for (let seed = 0; seed < 3 * recentContentsMax; seed++)
      contents.noteWritten(seed, contents.make({ kind: 'random', seed }, seed));
    assert.match(
      contents.make({ kind: 'near', base: recentContentsMax, change: 'lastByte', seed: 0 }, 0).name,
      /^r\d+~last$/,
    );
  });

  it('recipes are random content, near-copies and zeros, and replay from a seed', (t) => {
    const seed = 2211;
    t.diagnostic(`seed ${seed}`);
    const sample = fc.sample(contentRecipeArbitrary(), { seed, numRuns: 900 });
    const kinds = new Map<string, number>();
    for (const recipe of sample) kinds.set(recipe.kind, (kinds.get(recipe.kind) ?? 0) + 1);
    assert.ok(
      kinds.get('random')! > 250 && kinds.get('near')! > 250 && kinds.get('zero')! > 30,
      JSON.stringify([...kinds]),
    );
    const changes = new Set(sample.flatMap((recipe: ContentRecipe) => (recipe.kind === 'near' ? [recipe.change] : [])));
    assert.deepEqual([...changes].sort(), ['lastByte', 'lastSector', 'middleSector']);
    assert.deepEqual(fc.sample(contentRecipeArbitrary(), { seed, numRuns: 900 }), sample);
  });
});
