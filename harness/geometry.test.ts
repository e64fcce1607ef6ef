import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  boundaryRegions,
  conformGeometries,
  describeGeometry,
  outOfRangeRegions,
  regionArbitrary,
} from './geometry.ts';

const mebibyte = 1 << 20;

describe('the geometries every level runs', () => {
  it('have the region counts and sizes docs/conformance.md names, each valid and cheap', () => {
    const counts = new Set(conformGeometries.map((geometry) => geometry.regions));
    for (const count of [1, 2, 3, 8, 9, 64, 65]) assert.ok(counts.has(count), `no geometry of ${count} regions`);
    assert.ok(
      [...counts].some((count) => count >= 1000),
      'no geometry of 1000 regions or more',
    );
    const sizes = new Set(conformGeometries.map((geometry) => geometry.regionSize));
    for (const size of [512, 4096, 65536]) assert.ok(sizes.has(size), `no geometry of ${size}-byte regions`);
    for (const geometry of conformGeometries) {
      assert.ok(Number.isInteger(geometry.regions) && geometry.regions >= 1, describeGeometry(geometry));
      assert.equal(geometry.regionSize % 512, 0, describeGeometry(geometry));
      assert.ok(
        geometry.regions * geometry.regionSize <= 8 * mebibyte,
        `${describeGeometry(geometry)} is more than 8 MiB`,
      );
    }
  });

  it('cross a byte and a 64-bit word of map bits, just at and just past each edge', () => {
    const counts = conformGeometries.map((geometry) => geometry.regions);
    for (const edge of [8, 64]) {
      assert.ok(counts.includes(edge), `no geometry ending at the edge ${edge}`);
      assert.ok(counts.includes(edge + 1), `no geometry crossing the edge ${edge}`);
    }
  });

  it('are described as "regions x regionSize B"', () => {
    assert.equal(describeGeometry({ regions: 65, regionSize: 4096 }), '65 x 4096 B');
  });
});

describe('boundary regions', () => {
  it('are the edges of a map, in range, sorted, without repeats', () => {
    assert.deepEqual(boundaryRegions(1), [0]);
    assert.deepEqual(boundaryRegions(2), [0, 1]);
    assert.deepEqual(boundaryRegions(9), [0, 1, 4, 7, 8]);
    assert.deepEqual(boundaryRegions(65), [0, 1, 7, 8, 32, 63, 64]);
    assert.deepEqual(boundaryRegions(1025), [0, 1, 7, 8, 63, 64, 512, 1023, 1024]);
    assert.deepEqual(
      boundaryRegions(40000),
      [0, 1, 7, 8, 63, 64, 1023, 1024, 4095, 4096, 20000, 32767, 32768, 39998, 39999],
    );
    for (const regions of [1, 3, 8, 64, 100, 4097]) {
      const boundaries = boundaryRegions(regions);
      assert.ok(
        boundaries.every(
          (region, index) => region >= 0 && region < regions && (index === 0 || region > boundaries[index - 1]!),
        ),
        `${regions}: ${boundaries.join(',')}`,
      );
      assert.ok(boundaries.includes(regions - 1), 'the last region is a boundary');
    }
    assert.throws(() => boundaryRegions(0), RangeError);
  });

  it('are out of range just past the end and past 2^31', () => {
    assert.deepEqual(outOfRangeRegions(65), [65, 2 ** 31]);
  });
});

describe('region indices', () => {
  it('stay in range, reach the boundaries often and the rest of the volume too', (t) => {
    const seed = 1101;
    t.diagnostic(`seed ${seed}`);
    for (const regions of [1, 9, 1025]) {
      const sample = fc.sample(regionArbitrary(regions), { seed, numRuns: 2000 });
      assert.ok(
        sample.every((region) => Number.isInteger(region) && region >= 0 && region < regions),
        `${regions}: out of range`,
      );
      const boundaries = new Set(boundaryRegions(regions));
      const onBoundary = sample.filter((region) => boundaries.has(region)).length;
      if (regions === 1025) {
        for (const boundary of boundaries) assert.ok(sample.includes(boundary), `region ${boundary} never picked`);
        assert.ok(onBoundary > 800, `${onBoundary} of 2000 on a boundary`);
        const elsewhere = new Set(sample.filter((region) => !boundaries.has(region)));
        assert.ok(elsewhere.size > 500, `only ${elsewhere.size} other regions`);
        assert.ok(
          [...elsewhere].some((region) => region > 900) && [...elsewhere].some((region) => region < 100),
          'the volume is not spanned',
        );
      }
    }
  });
});
