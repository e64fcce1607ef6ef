// scrub --repair on a volume whose map page failed its CRC (docs/format.md, "Scrub:
// the volume's files"): the read-write open that --repair needs mends the page
// (recovery rewrites a torn-looking page of X, and clears C while idle), and the
// report still names the file and the page as repaired, so that the rot a
// read-only scrub showed does not vanish from the record. One cycle then leaves
// the secondary equal to the primary.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { makeTemporaryDir, NodeStorage, removeTree } from './nodeStorage.ts';
import { ReplicatedVolume } from './replicatedVolume.ts';
import { runCycle } from './runCycle.ts';
import { flipByte } from './testFiles.ts';

const storage = new NodeStorage();
const regions = 40;
const regionSize = 512;
let root: string;
let dir: string;

beforeEach(() => {
  root = makeTemporaryDir('cowmap-scrub-open-');
  dir = join(root, 'vol');
  const volume = ReplicatedVolume.create(storage, dir, { regions, regionSize });
  try {
    for (const region of [1, 5, 17, 33]) volume.writeRegion(region, new Uint8Array(regionSize).fill(region));
    runCycle(volume); // cycle 1: map1 is C (ignored while idle), map0 is X
    for (const region of [5, 9]) volume.writeRegion(region, new Uint8Array(regionSize).fill(100 + region));
  } finally {
    volume.close();
  }
});

afterEach(() => removeTree(root));

function secondaryEqualsPrimary(): boolean {
  const volume = ReplicatedVolume.open(storage, dir, { readOnly: true });
  try {
    const size = volume.sizeBytes;
    return Buffer.from(volume.read(0, size)).equals(volume.read(0, size, 'secondary'));
  } finally {
    volume.close();
  }
}

for (const [name, position, what] of [
  ['map0', 0, 'a bit of X set by rot (nothing lost)'],
  ['map0', 4093, "X's page CRC"],
  ['map1', 4093, "C's page CRC while idle"],
] as const) {
  test(`scrub --repair reports ${name} byte ${position} (${what}) as repaired, and a cycle makes S equal P`, () => {
    flipByte(join(dir, name), position, 0x01);
    const readOnly = ReplicatedVolume.scrubDir(storage, dir, { repair: false });
    assert.deepEqual(
      readOnly.findings.map((finding) => [finding.file, finding.offset, finding.repaired]),
      [[join(dir, name), 0, false]],
    );
    const repaired = ReplicatedVolume.scrubDir(storage, dir, { repair: true });
    assert.equal(repaired.findings.length, 1, JSON.stringify(repaired.findings));
    assert.equal(repaired.findings[0]!.file, join(dir, name));
    assert.equal(repaired.findings[0]!.repaired, true);
    assert.match(repaired.findings[0]!.problem, /map page 0 fails its CRC-32/);
    assert.deepEqual(
      ReplicatedVolume.scrubDir(storage, dir, { repair: false }).findings,
      [],
      'the page is whole again',
    );
    const volume = ReplicatedVolume.open(storage, dir);
    try {
      runCycle(volume);
    } finally {
      volume.close();
    }
    assert.ok(secondaryEqualsPrimary());
  });
}
