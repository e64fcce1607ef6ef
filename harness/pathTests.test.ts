import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { boundaryRegions } from './geometry.ts';
import { mutantNamed } from './mutants/mutants.ts';
import { pathMapping, pathSteps, runPaths, shortestPaths } from './pathTests.ts';
import type { PathOptions } from './pathTests.ts';
import { ReferenceSut } from './sut/referenceSut.ts';
import { replayTrace } from './replay.ts';
import { scenarioTrace } from './scenario.ts';
import { ContentBook } from './trace/content.ts';
import { readTrace } from './trace/reader.ts';
import { atLevel } from './testLevel.ts';

const model: PathOptions = { regions: 2, values: 1, crash: false, regionSize: 512 };
/** The smallest model, for runs: its paths are few (a volume of 65 x 4 KiB runs about 100 steps/s in process). */
const oneRegion: PathOptions = { regions: 1, values: 1, crash: false, regionSize: 512 };
const volume = { regions: 65, regionSize: 4096 };
/** The volume the paths run on: 17 x 1 KiB in make test (regions 8 and up still there), 65 x 4 KiB in make verify. */
const runVolume = atLevel({ regions: 17, regionSize: 1024 }, volume);

/** The first seed whose mapping puts the model's region at 8 or above (the search is deterministic). */
function seedMappingHigh(): number {
  for (let seed = 0; seed < 100; seed++) {
    if (pathMapping({ ...oneRegion, volume: runVolume, seed }).regionOf.every((region) => region >= 8)) return seed;
  }
  throw new Error('no seed in 0..99 maps a model region to 8 or above');
}

describe('path tests on a volume', () => {
  it('map the model regions onto distinct boundary regions of the volume, picked by the seed', () => {
    assert.deepEqual(pathMapping(model).regionOf, [0, 1]);
    assert.deepEqual(pathMapping(model).geometry, { regions: 2, regionSize: 512 });
    const boundaries = boundaryRegions(volume.regions);
    const seen = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      const mapping = pathMapping({ ...model, volume, seed });
      assert.deepEqual(mapping.geometry, volume);
      assert.equal(mapping.regionOf.length, 2);
      assert.notEqual(mapping.regionOf[0], mapping.regionOf[1]);
      assert.ok(
        mapping.regionOf.every((region) => boundaries.includes(region)),
        mapping.regionOf.join(','),
      );
      assert.deepEqual(
        pathMapping({ ...model, volume, seed }).regionOf,
        mapping.regionOf,
        'the same seed, the same mapping',
      );
      seen.add(mapping.regionOf.join(','));
    }
    assert.ok(seen.size > 5, `only ${seen.size} mappings in 20 seeds`);
    assert.throws(() => pathMapping({ ...model, volume: { regions: 1, regionSize: 512 } }), RangeError);
  });

  it('write full-region bytes of the volume, one byte short for E_SIZE, and address one past its last region for E_RANGE', () => {
    const mapping = pathMapping({ ...model, volume, seed: 3 });
    const paths = shortestPaths(model);
    const book = new ContentBook(volume.regionSize);
    const steps = paths.flatMap((path) => pathSteps(path, book, mapping));
    const writes = steps.flatMap((step) => (step.kind === 'op' && step.op.type === 'write' ? [step.op] : []));
    assert.ok(
      writes.some((op) => op.data.length === volume.regionSize && op.data.subarray(512).some((byte) => byte !== 0)),
      'no full-region write',
    );
    assert.ok(
      writes.some((op) => op.data.length === volume.regionSize - 1),
      'no wrong-size write',
    );
    assert.ok(writes.every((op) => op.data.length === volume.regionSize || op.data.length === volume.regionSize - 1));
    const regions = new Set(
      steps.flatMap((step) => (step.kind === 'op' && 'region' in step.op ? [step.op.region] : [])),
    );
    assert.deepEqual(
      [...regions].sort((a, b) => a - b),
      [...mapping.regionOf, volume.regions].sort((a, b) => a - b),
    );
    // Messages name the bytes by the model's labels (a later write of a region by its number), other bytes by a digest prefix.
    assert.match(book.show(book.addBytes(writes[0]!.data)), /^[A-Z]\d+(~\d+)?$/);
    assert.ok(
      writes.some((op) => /^[A-Z]\d+~\d+$/.test(book.show(book.addBytes(op.data)))),
      'no near-copy named',
    );
    assert.match(book.show(book.addBytes(new Uint8Array(volume.regionSize).fill(7))), /^#[0-9a-f]{8}$/);
    // Paths made with the model's 512 bytes, run with the volume's regionSize in the options: the same sizes.
    const asVolume = pathMapping({ ...model, regionSize: volume.regionSize, volume, seed: 3 });
    const sizes = paths
      .flatMap((path) => pathSteps(path, new ContentBook(volume.regionSize), asVolume))
      .flatMap((step) => (step.kind === 'op' && step.op.type === 'write' ? [step.op.data.length] : []));
    assert.deepEqual(
      [...new Set(sizes)].sort((a, b) => a - b),
      [volume.regionSize - 1, volume.regionSize],
    );
  });

  it('pass on the reference implementation, and catch a bug for regions 8 and up that the model-sized volume misses; the failing path replays', async (t) => {
    const seed = seedMappingHigh();
    t.diagnostic(`seed ${seed}`);
    const paths = shortestPaths(oneRegion);
    const mapped = { ...oneRegion, volume: runVolume, seed };
    const correct = await runPaths(paths, mapped, () => new ReferenceSut());
    assert.equal(correct.failure, null, correct.failure?.result.failure?.message);
    assert.equal(correct.paths, paths.length);
    assert.deepEqual(correct.geometry, runVolume);

    const name = 'transfer-sends-primary-from-region-8';
    const broken = () => new ReferenceSut({ volumeClass: mutantNamed(name).volumeClass, name });
    const small = await runPaths(paths, oneRegion, broken);
    assert.equal(small.failure, null, 'region 0 cannot show it');
    const result = await runPaths(paths, mapped, broken);
    assert.ok(result.failure !== null, `${name} passed the mapped paths`);
    const failure = result.failure.result.failure!;
    assert.ok(
      failure.differences.some((d) => d.field.startsWith('secondary')),
      JSON.stringify(failure.differences),
    );

    const text = scenarioTrace(result.geometry, result.failure.result.records, 'path test', [], seed);
    assert.match(text, /"base64":/);
    const trace = readTrace(text, 'path.jsonl');
    assert.notEqual(
      (await replayTrace(trace, broken())).failure,
      null,
      'the saved path passes on the broken implementation',
    );
    assert.equal((await replayTrace(trace, new ReferenceSut())).failure, null);
  });

  it('stop between paths when asked', async () => {
    const paths = shortestPaths(oneRegion);
    let started = 0;
    const result = await runPaths(
      paths,
      { ...oneRegion, volume, seed: 1 },
      () => new ReferenceSut(),
      (done) => (started = done),
      () => started >= 3,
    );
    assert.equal(result.paths, 3);
    assert.equal(result.failure, null);
  });
});
