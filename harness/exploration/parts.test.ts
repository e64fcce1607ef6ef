// The exploration's parts on their own: the tears torn mode tries, the seed
// search, the labels, the options' bounds, and the in-memory storage the volume
// lives on during an exploration.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sectorSize } from '../../impl/geometry.ts';
import { MemoryStorage } from '../storage/memoryStorage.ts';
import { Prng } from '../prng.ts';
import { choicesAt, seedFor } from './choices.ts';
import { exploreCrashes } from './explorer.ts';
import { explorationLabel, shortenLabels } from './operations.ts';
import { explorationBounds, explorationDefaults, explorationOptionsProblem } from './options.ts';

describe('crash exploration parts', () => {
  it("torn mode tears the volume's own records inside a sector, not region data", () => {
    const write = (index: number, path: string, position: number, length: number) => ({
      index,
      path,
      position,
      length,
      sectorCount: Math.ceil(length / sectorSize),
      carried: false,
    });
    const shape = {
      writes: [write(0, '/volume/meta', 512, 512), write(1, '/volume/primary', 0, 1024)],
      truncates: 0,
      namespace: 0,
    };
    const tearable = (info: { path: string }) => !info.path.endsWith('/primary');
    const { choices } = choicesAt('torn', shape, 6, 4, tearable);
    const tears = choices.filter((choice) => choice.tear !== undefined).map((choice) => choice.tear!);
    assert.equal(tears.length, 4, 'head or tail new, others kept or dropped, for the metadata slot only');
    assert.ok(tears.every((tear) => tear.write === 0 && tear.sector === 0));
    assert.equal(
      choicesAt('power', shape, 6, 4, tearable).choices.filter((choice) => choice.tear !== undefined).length,
      0,
      'power mode never tears',
    );
  });

  it('finds a seed whose coins draw a given subset, as the crash layer draws them', () => {
    for (const bits of [[], [true], [false, true, true], [true, false, false, true, false, true]]) {
      const seed = seedFor(bits, 1 << 16);
      assert.ok(seed !== null);
      const prng = new Prng(seed);
      assert.deepEqual(
        bits.map(() => prng.nextBool()),
        bits,
      );
    }
  });

  it('labels differ in every sector and read back short', () => {
    const label = explorationLabel('B', 2, 1536);
    assert.equal(label.length, 1026);
    for (const sector of [0, 512, 1024]) assert.equal(label.slice(sector, sector + 2), 'B2');
    assert.equal(explorationLabel('A', 1, 512), 'A1');
    assert.equal(shortenLabels(`P=${label} ${explorationLabel('A', 1, 1024)} 0`), 'P=B2 A1 0');
  });

  it('says the first option out of bounds, and the explorer refuses it before it starts', async () => {
    const small = { length: 2, regions: 2, values: 1 };
    assert.equal(explorationOptionsProblem(small), null);
    assert.equal(explorationOptionsProblem({ ...small, regionSize: explorationDefaults.regionSize }), null);
    const cases: Array<[Partial<Parameters<typeof explorationOptionsProblem>[0]>, RegExp]> = [
      [{ length: explorationBounds.length.max + 1 }, /^length must be an integer in 0\.\.8, got 9$/],
      [{ regions: 17 }, /^the number of regions written must be an integer in 1\.\.8, got 17$/],
      [{ regions: 17, activeRegions: [0, 17] }, /^a region written must be an integer in 0\.\.16, got 17$/],
      [{ values: 0 }, /^values must be an integer in 1\.\.8, got 0$/],
      [{ subsetBitsMax: 21 }, /^subsetBitsMax must be an integer in 0\.\.20, got 21$/],
      [{ regionSize: 256 }, /^regionSize must be an integer in 512\.\.1048576, got 256$/],
      [{ regionSize: 1000 }, /^regionSize must be a multiple of 512, got 1000$/],
      [{ rotStatesMax: -1 }, /^rotStatesMax must be an integer in 0\.\.65536, got -1$/],
      // The first problem only: regions out of bounds is said before the regions written are listed.
      [{ regions: 2 ** 40, values: 0 }, /^regions must be an integer in 1\.\.65536, got 1099511627776$/],
    ];
    for (const [change, expected] of cases) {
      assert.match(explorationOptionsProblem({ ...small, ...change }) ?? 'no problem', expected);
    }
    await assert.rejects(exploreCrashes({ ...small, values: 9, failuresDir: null }), {
      name: 'RangeError',
      message: 'crash exploration: values must be an integer in 1..8, got 9',
    });
  });

  it('MemoryStorage behaves as node:fs does where the volume and the crash layer look', () => {
    const storage = new MemoryStorage();
    assert.throws(() => storage.mkdir('/v/s'), { code: 'ENOENT' }, 'mkdir makes one directory: its parent must exist');
    storage.mkdir('/v');
    storage.mkdir('/v/s');
    assert.throws(() => storage.mkdir('/v/s'), { code: 'EEXIST' });
    const file = storage.open('/v/a', { create: true });
    assert.throws(() => storage.open('/v/a', { create: true }), { code: 'EEXIST' });
    assert.throws(() => storage.open('/v/b', { create: false }), { code: 'ENOENT' });
    assert.throws(() => storage.open('/nodir/b', { create: true }), { code: 'ENOENT' });
    assert.throws(() => storage.open('/v/s', { create: false }), { code: 'EISDIR' });
    file.write(4, new Uint8Array([1, 2]));
    assert.equal(file.size(), 6);
    assert.deepEqual([...file.read(3, 5)], [0, 1, 2, 0, 0]);
    const copy = storage.clone();
    storage.rename('/v/a', '/v/c');
    file.write(0, new Uint8Array([9])); // the handle follows the file
    assert.deepEqual(storage.list('/v'), ['c', 's']);
    assert.deepEqual([...storage.open('/v/c', { create: false }).read(0, 1)], [9]);
    assert.deepEqual(copy.list('/v'), ['a', 's']);
    assert.deepEqual([...copy.open('/v/a', { create: false }).read(0, 6)], [0, 0, 0, 0, 1, 2]);
    assert.notEqual(copy.digest(), storage.digest());
    storage.unlink('/v/c');
    assert.equal(storage.exists('/v/c'), false);
    const lock = storage.lock('/v');
    assert.ok(lock !== null);
    assert.equal(storage.lock('/v'), null);
    lock.release();
    assert.ok(storage.lock('/v') !== null);
    const shared = [storage.lock('/w', { shared: true }), storage.lock('/w', { shared: true })];
    assert.ok(
      shared.every((held) => held !== null),
      'shared holders coexist',
    );
    assert.equal(storage.lock('/w'), null, 'an exclusive lock waits for every shared holder');
    for (const held of shared) held!.release();
    assert.ok(storage.lock('/w') !== null);
    assert.throws(() => storage.rmdir('/v'), { code: 'ENOTEMPTY' });
    storage.rmdir('/v/s');
    assert.equal(storage.exists('/v/s'), false);
    assert.throws(() => storage.rmdir('/v/s'), { code: 'ENOENT' });
    const readOnly = storage.open('/v/a2', { create: true });
    readOnly.close();
    const reader = storage.open('/v/a2', { create: false, readOnly: true });
    assert.throws(() => reader.write(0, new Uint8Array([1])), { code: 'EBADF' });
  });
});
