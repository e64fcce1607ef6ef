// The secondary kinds as create and open dispatch them (impl/remote/replicaKinds.ts):
// what the metadata records, and the consistent secondary end to end through the
// volume and the CLI (the NBD one: nbdReplica.test.ts).

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runInProcess } from '../../bin/runInProcess.ts';
import { NodeStorage } from '../nodeStorage.ts';
import { ReplicatedVolume } from '../replicatedVolume.ts';
import { runCycle } from '../runCycle.ts';
import { labelBytes } from '../testFiles.ts';
import { refuseUrlAsDirectory, secondaryKindOf } from './replicaKinds.ts';

const geometry = { regions: 4, regionSize: 4096 };
const root = mkdtempSync(join(tmpdir(), 'cowmap-kinds-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const fresh = (): string => join(root, `d${dirs++}`);

describe('secondary kinds', () => {
  it('reads a recorded secondary as a directory, an NBD URL or a consistent directory', () => {
    assert.deepEqual(secondaryKindOf(''), { kind: 'directory', recorded: '' });
    assert.deepEqual(secondaryKindOf('../s2'), { kind: 'directory', recorded: '../s2' });
    assert.deepEqual(secondaryKindOf('nbd://h:10809/e'), { kind: 'nbd', url: 'nbd://h:10809/e' });
    assert.deepEqual(secondaryKindOf('nbd+unix:///e?socket=/s'), { kind: 'nbd', url: 'nbd+unix:///e?socket=/s' });
    assert.deepEqual(secondaryKindOf('consistent:../s2'), { kind: 'consistent', recordedDir: '../s2' });
  });

  it('never takes a URL for a directory (the stray nbd: folders of the review)', () => {
    for (const url of ['nbd:/h:10809/e', 'nbd+unix:/?socket=/s', 'http://h/x', 'consistent:nbd://h/e', 'NBD:x']) {
      assert.throws(
        () => secondaryKindOf(url),
        (error: unknown) => (error as { code?: string }).code === 'E_BAD_REQUEST',
        url,
      );
    }
    assert.doesNotThrow(() => refuseUrlAsDirectory('../nbd-copies/s2'));
    assert.throws(() => refuseUrlAsDirectory('nbd:/127.0.0.1:1/x'), /reads as a URL/);
  });

  it('a consistent secondary keeps P@swap of the last completed cycle while the next one is sent', () => {
    const dir = fresh();
    const secondaryDir = fresh();
    const volume = ReplicatedVolume.create(new NodeStorage(), dir, geometry, { consistentSecondaryDir: secondaryDir });
    volume.writeRegion(1, labelBytes('cycle 1', geometry.regionSize));
    runCycle(volume);
    volume.writeRegion(1, labelBytes('cycle 2', geometry.regionSize));
    volume.writeRegion(2, labelBytes('cycle 2', geometry.regionSize));
    volume.startCycle();
    volume.transferRegions([1]);
    assert.deepEqual(volume.readConsistent(1), labelBytes('cycle 1', geometry.regionSize));
    assert.deepEqual(volume.readRegion(1, 'secondary'), labelBytes('cycle 2', geometry.regionSize));
    volume.close();
    const reopened = ReplicatedVolume.open(new NodeStorage(), dir);
    assert.deepEqual(reopened.readConsistent(1), labelBytes('cycle 1', geometry.regionSize));
    runCycle(reopened);
    assert.deepEqual(reopened.readConsistent(2), labelBytes('cycle 2', geometry.regionSize));
    reopened.close();
  });

  it('a directory secondary has no consistent image (E_BAD_REQUEST)', () => {
    const volume = ReplicatedVolume.create(new NodeStorage(), fresh(), geometry);
    assert.throws(() => volume.readConsistent(0), { code: 'E_BAD_REQUEST' });
    volume.close();
  });

  it('cowmap init --secondary DIR2 --consistent, and --consistent with an NBD URL is bad usage', async () => {
    const dir = fresh();
    const secondaryDir = fresh();
    const geometryArgs = ['--regions', '4', '--region-size', '4096'];
    const made = await runInProcess(['init', dir, ...geometryArgs, '--secondary', secondaryDir, '--consistent']);
    assert.equal(made.status, 0, made.stderr);
    assert.match(made.stdout.toString(), /consistent secondary in /);
    assert.ok(readdirSync(secondaryDir).length > 0);
    const refused = await runInProcess(['init', fresh(), ...geometryArgs, '--secondary', 'nbd://h/e', '--consistent']);
    assert.equal(refused.status, 2);
    assert.equal(existsSync(join(root, `d${dirs - 1}`)), false);
  });
});
