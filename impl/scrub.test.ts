// scrub (docs/format.md, "Scrub"): a clean volume has no finding; a flipped byte in
// the secondary's image, its digest table or an uncovered region of the primary is
// a finding naming the file, the offset and the region; a pending region is never
// judged; --repair marks what it found in X so that one cycle makes S equal P again;
// and the repair's order and bookkeeping on a target whose findings are given.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { sha256Hex } from './checksum.ts';
import { digestPageBytes } from './digestTable.ts';
import { makeTemporaryDir, NodeStorage, removeTree } from './nodeStorage.ts';
import { ReplicatedVolume } from './replicatedVolume.ts';
import { runCycle } from './runCycle.ts';
import { internalsTarget, scrubOpenVolume, scrubVolume, type ScrubTarget, type TargetFinding } from './scrub.ts';
import type { ScrubReport } from './scrubFinding.ts';

const storage = new NodeStorage();
const regions = 2100; // three digest pages, and more than one map byte
const regionSize = 512;
let root: string;
let dir: string;

beforeEach(() => {
  root = makeTemporaryDir('cowmap-scrub-');
  dir = join(root, 'vol');
});

afterEach(() => removeTree(root));

function content(seed: number): Uint8Array {
  return Uint8Array.from({ length: regionSize }, (_, i) => (seed * 131 + i * 7 + 1) & 0xff);
}

function flipByte(path: string, position: number): void {
  const file = storage.open(path, { create: false });
  try {
    const byte = file.read(position, 1);
    file.write(position, Uint8Array.of(byte[0]! ^ 0x40));
    file.sync();
  } finally {
    file.close();
  }
}

/** A volume whose regions 0, 7, 1500 and 2099 went out in one cycle, and region 9 written since (in X). */
function makeVolume(): void {
  const volume = ReplicatedVolume.create(storage, dir, { regions, regionSize });
  try {
    for (const region of [0, 7, 1500, 2099]) volume.writeRegion(region, content(region));
    runCycle(volume);
    volume.writeRegion(9, content(9));
  } finally {
    volume.close();
  }
}

function scrub(repair = false): ScrubReport {
  const volume = ReplicatedVolume.open(storage, dir);
  try {
    return scrubOpenVolume(volume, { repair });
  } finally {
    volume.close();
  }
}

/** The file, region and repaired flag of each finding: what a test compares. */
function summary(report: ScrubReport): { file: string; offset: number; region: number | null; repaired: boolean }[] {
  return report.findings.map(({ file, offset, region, repaired }) => ({ file, offset, region, repaired }));
}

/** Runs cycles until idle with nothing dirty, then checks S = P region by region. */
function cycleUntilEqual(): void {
  const volume = ReplicatedVolume.open(storage, dir);
  try {
    runCycle(volume);
    const state = volume.state();
    assert.deepEqual(state.secondary, state.primary, 'S equals P after the cycle that follows --repair');
  } finally {
    volume.close();
  }
}

describe('scrub on a volume', () => {
  test('a clean volume: no finding, every region checked', () => {
    makeVolume();
    const report = scrub();
    assert.deepEqual(report.findings, []);
    assert.deepEqual(report.repairedRegions, []);
    assert.equal(report.regionsChecked, regions);
  });

  test('a flipped byte in the secondary image: one finding naming DIR2/image, the offset and the region; --repair and a cycle make S equal P', () => {
    makeVolume();
    const image = join(dir, 'secondary', 'image');
    flipByte(image, 1500 * regionSize + 17);
    const report = scrub();
    assert.deepEqual(summary(report), [{ file: image, offset: 1500 * regionSize, region: 1500, repaired: false }]);
    assert.match(report.findings[0]!.problem, /region 1500 of the secondary does not match its digest/);

    const repaired = scrub(true);
    assert.deepEqual(summary(repaired), [{ file: image, offset: 1500 * regionSize, region: 1500, repaired: true }]);
    assert.deepEqual(repaired.repairedRegions, [1500]);
    cycleUntilEqual();
    assert.deepEqual(scrub().findings, []);
  });

  test('a flipped byte in an uncovered region of the primary: a finding naming DIR/primary; --repair resends it', () => {
    makeVolume();
    const primary = join(dir, 'primary');
    flipByte(primary, 7 * regionSize + 3);
    flipByte(primary, 9 * regionSize + 3); // region 9 is in X: P and S may differ there, no finding
    const report = scrub();
    assert.deepEqual(summary(report), [{ file: primary, offset: 7 * regionSize, region: 7, repaired: false }]);
    assert.match(report.findings[0]!.problem, /primary differs from the secondary's digest/);
    assert.deepEqual(scrub(true).repairedRegions, [7]);
    cycleUntilEqual();
    assert.deepEqual(scrub().findings, []);
  });

  test('a flipped byte in a digest-table page: one finding naming DIR2/digests and the page, its regions not judged; --repair rewrites it', () => {
    makeVolume();
    const digests = join(dir, 'secondary', 'digests');
    flipByte(digests, digestPageBytes + 4 * (1500 - 1020));
    const report = scrub();
    assert.deepEqual(summary(report), [{ file: digests, offset: digestPageBytes, region: 1020, repaired: false }]);
    assert.match(report.findings[0]!.problem, /page 1 fails its CRC-32/);
    assert.equal(report.regionsChecked, regions - 1020);

    const repaired = scrub(true);
    assert.equal(repaired.repairedRegions.length, 1020);
    assert.equal(repaired.findings[0]!.repaired, true);
    assert.deepEqual(scrub().findings, []); // the page is whole again
    cycleUntilEqual();
    assert.deepEqual(scrub().findings, []);
  });

  test('without --repair scrub writes nothing, findings or not', () => {
    makeVolume();
    flipByte(join(dir, 'secondary', 'image'), 2099 * regionSize);
    const files = ['meta', 'primary', 'map0', 'map1', 'cow', 'secondary/image', 'secondary/digests', 'secondary/replica'].map((name) => join(dir, name));
    const hashes = (): string[] =>
      files.map((path) => {
        const file = storage.open(path, { create: false });
        try {
          return sha256Hex(file.read(0, file.size()));
        } finally {
          file.close();
        }
      });
    const before = hashes();
    assert.equal(scrub().findings.length, 1);
    assert.deepEqual(hashes(), before);
  });

  test('a pending region (in C, not sent since the open) is not judged; once sent it is', () => {
    makeVolume();
    let volume = ReplicatedVolume.open(storage, dir);
    volume.startCycle(); // C = {9}
    volume.close();
    const image = join(dir, 'secondary', 'image');
    flipByte(image, 9 * regionSize); // as a crash between the image write and the table's would leave it
    volume = ReplicatedVolume.open(storage, dir);
    try {
      assert.deepEqual(scrubOpenVolume(volume, { repair: false }).findings, []);
      volume.transfer(9);
      assert.deepEqual(scrubOpenVolume(volume, { repair: false }).findings, []); // sent: S and its entry agree again
      flipByte(image, 9 * regionSize);
      assert.deepEqual(
        scrubOpenVolume(volume, { repair: false }).findings.map((finding) => finding.region),
        [9],
      );
    } finally {
      volume.close();
    }
  });
});

/** A target over a real volume whose own findings (metadata, map, COW) are the given ones, recording the repair's calls. */
function recordingTarget(base: ScrubTarget, own: { metadata?: TargetFinding[]; map?: TargetFinding[]; cow?: TargetFinding[] }, calls: string[]): ScrubTarget {
  return {
    ...base,
    metadataFindings: () => own.metadata ?? [],
    mapFindings: () => own.map ?? [],
    cowFindings: () => own.cow ?? [],
    markNext: (marked) => {
      calls.push(`markNext ${marked.length}`);
      base.markNext(marked);
    },
    rewriteMapPages: () => calls.push('rewriteMapPages'),
    dropCopy: (region) => calls.push(`dropCopy ${region}`),
  };
}

describe('scrubVolume and the target', () => {
  test('the volume\'s own findings: metadata never repaired, a map page marks its range, a COW copy is dropped, X first', () => {
    makeVolume();
    const volume = ReplicatedVolume.open(storage, dir);
    try {
      const calls: string[] = [];
      const finding = (file: string, region: number | null): TargetFinding => ({ file: join(dir, file), offset: 0, region, problem: 'flipped', repaired: false });
      const target = recordingTarget(
        internalsTarget(volume),
        { metadata: [finding('meta', null)], map: [{ ...finding('map1', 0), affected: { first: 0, count: 20 } }], cow: [finding('cow', 30)] },
        calls,
      );
      const report = scrubVolume(target, { repair: false });
      assert.deepEqual(report.findings.map((f) => [f.file, f.repaired]), [
        [join(dir, 'meta'), false],
        [join(dir, 'map1'), false],
        [join(dir, 'cow'), false],
      ]);
      assert.deepEqual(calls, []);

      const repaired = scrubVolume(target, { repair: true });
      assert.deepEqual(repaired.findings.map((f) => f.repaired), [false, true, true]);
      assert.deepEqual(repaired.repairedRegions, [...Array.from({ length: 20 }, (_, r) => r), 30]);
      assert.deepEqual(calls, ['markNext 21', 'rewriteMapPages', 'dropCopy 30']);
      assert.deepEqual(volume.nextRegions(), [...Array.from({ length: 20 }, (_, r) => r), 30]);
    } finally {
      volume.close();
    }
  });
});
