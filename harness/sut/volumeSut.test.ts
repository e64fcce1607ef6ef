// One VolumeSut for every volume in this process: the reference on real files
// (its temporary directory removed at close) and the exploration's in memory
// (a prefix state saved and restored), crashed the same way inside an operation.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, it } from 'node:test';
import { sha256Hex } from '../../impl/checksum.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { MemoryStorage } from '../storage/memoryStorage.ts';
import { ExplorationSut, memoryFiles } from './explorationSut.ts';
import { ReferenceSut } from './referenceSut.ts';

const geometry = { regions: 2, regionSize: 512 };
const data = new Uint8Array(512).fill(7);

describe('VolumeSut', () => {
  it('the reference: an operation counts its durable calls, a crash inside it is recovered, close removes the files', async () => {
    const sut = new ReferenceSut({ name: 'reference under test' });
    assert.equal(sut.name, 'reference under test');
    await sut.create(geometry);
    const written = await sut.apply({ type: 'write', region: 1, data });
    assert.ok(written.ok && (written.io ?? 0) > 0, `a write makes durable calls: ${JSON.stringify(written)}`);
    const volumeFile = sut.crashStorage.log.at(-1)?.path;
    assert.ok(volumeFile !== undefined, 'the crash layer logged the write');
    const crashed = await sut.applyCrashing(
      { type: 'startCycle' },
      { afterIo: 1, mode: 'process', seed: 0, torn: false },
    );
    assert.deepEqual(crashed, { crashed: true });
    assert.ok(sut.lastShape !== null, 'the crash says what was unsynced there');
    const recovered = await sut.recover();
    assert.ok(recovered.ok, JSON.stringify(recovered));
    assert.ok(sut.lastRecoveryPath !== '', 'the recovery path is named by its durable calls');
    const state = await sut.state();
    assert.equal(state.primary.length, 2);
    const rejected = await sut.apply({ type: 'transfer', region: 5 });
    assert.equal(rejected.ok, false, 'a rejection is a reply');
    assert.ok(existsSync(volumeFile), 'the volume is on real files');
    await sut.close();
    assert.equal(existsSync(dirname(volumeFile)), false, 'the temporary directory is gone');
  });

  it('with the feature consistent: D reported, and a crash at every durable call of completeCycle leaves one of the last two points', async () => {
    const outcomes = new Set<string>();
    const zeroDigest = sha256Hex(new Uint8Array(512));
    const newDigest = sha256Hex(data);
    for (let afterIo = 0; afterIo < 64; afterIo++) {
      const sut = new ReferenceSut({ consistent: true });
      assert.ok(sut.features.has('consistent'));
      await sut.create(geometry);
      await sut.apply({ type: 'write', region: 0, data });
      await sut.apply({ type: 'startCycle' });
      await sut.apply({ type: 'transfer', region: 0 });
      assert.deepEqual((await sut.state()).consistent, [zeroDigest, zeroDigest], 'a transfer leaves D alone');
      const crash = { afterIo, mode: 'process', seed: 0, torn: false } as const;
      const result = await sut.applyCrashing({ type: 'completeCycle' }, crash);
      if (result.crashed) assert.ok((await sut.recover()).ok);
      const state = await sut.state();
      const point =
        state.consistent?.[0] === newDigest ? 'new' : state.consistent?.[0] === zeroDigest ? 'old' : 'other';
      assert.equal(state.consistent?.[1], zeroDigest);
      outcomes.add(`${state.phase} ${point}`);
      await sut.close();
      if (!result.crashed) break;
    }
    // The far side commits before the primary's durable step: never idle with the old point (docs/protocol.md section 10).
    assert.deepEqual([...outcomes].sort(), ['idle new', 'replicating new', 'replicating old']);
  });

  it('the exploration: a saved state restored gives the same files and sent set, and a user file makes create refuse', async () => {
    const sut = new ExplorationSut('in memory', ReplicatedVolume);
    await sut.create(geometry);
    await sut.apply({ type: 'write', region: 0, data });
    await sut.apply({ type: 'startCycle' });
    await sut.apply({ type: 'transfer', region: 0 });
    assert.ok(sut.isClean, 'every acknowledged operation is durable');
    const saved = { image: sut.files.clone(), sent: sut.sentRegions(), replay: [] };
    assert.deepEqual(saved.sent, [0]);
    const digest = sut.files.digest();
    await sut.apply({ type: 'completeCycle' });
    assert.notEqual(sut.files.digest(), digest);
    sut.restore(saved);
    assert.equal(sut.files.digest(), digest);
    assert.deepEqual(sut.sentRegions(), [0]);
    const files = new MemoryStorage();
    files.mkdir('/volume');
    files.open('/volume/primary', { create: true }).close();
    const refused = sut.createOver(memoryFiles(files), geometry);
    assert.equal(refused.ok ? 'ok' : refused.code, 'E_EXISTS');
    await sut.close();
  });
});
