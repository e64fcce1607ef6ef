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
import { CrashStorage, isSimulatedCrash } from '../harness/storage/storageDoubles.ts';
import { makeTemporaryDir, NodeStorage, removeTree } from './nodeStorage.ts';
import { ReplicatedVolume } from './replicatedVolume.ts';
import { runCycle } from './runCycle.ts';
import { FileReplica } from './replica.ts';
import { scrubVolume, type ScrubTarget, type TargetFinding } from './scrub.ts';
import type { ScrubReport } from './scrubFinding.ts';
import { flipByte } from './testFiles.ts';

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

/** Scrubs the volume in `dir`, opened read-only unless repairing (as `cowmap scrub` does). */
function scrub(repair = false): ScrubReport {
  const volume = ReplicatedVolume.open(storage, dir, { readOnly: !repair });
  try {
    return volume.scrub({ repair });
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
    const files = [
      'meta',
      'primary',
      'map0',
      'map1',
      'cow',
      'secondary/image',
      'secondary/digests',
      'secondary/replica',
    ].map((name) => join(dir, name));
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

  test('a flipped byte in the older metadata slot: a finding naming DIR/meta, never repaired', () => {
    makeVolume();
    // After create (sequence 1), the swap (2) and the completion (3) the winner is in slot 1; slot 0 is the older.
    flipByte(join(dir, 'meta'), 100);
    const report = scrub();
    assert.deepEqual(summary(report), [{ file: join(dir, 'meta'), offset: 0, region: null, repaired: false }]);
    const repaired = scrub(true);
    assert.deepEqual(summary(repaired), [{ file: join(dir, 'meta'), offset: 0, region: null, repaired: false }]);
    assert.deepEqual(repaired.repairedRegions, []);
  });

  for (const name of ['map0', 'map1']) {
    test(`a flipped byte in a page of ${name} (read-only scrub): a finding naming the file and the page's first region`, () => {
      makeVolume();
      flipByte(join(dir, name), 4088); // the page's reserved bytes: the bits are intact, the CRC fails
      const report = scrub();
      assert.deepEqual(summary(report), [{ file: join(dir, name), offset: 0, region: 0, repaired: false }]);
      assert.match(report.findings[0]!.problem, /page 0/);
    });
  }

  test(
    'a flipped byte in a COW slot of the running cycle: a finding naming DIR/cow and the region; --repair ' +
      'drops it, and the cycles that follow make S equal P',
    () => {
      makeVolume();
      const volume = ReplicatedVolume.open(storage, dir);
      try {
        volume.startCycle(); // C = {9}
        volume.writeRegion(9, content(109)); // W[9] := content(9), X[9] set
        volume.writeRegion(7, content(107)); // W[7] := content(7), outside C
        const cow = join(dir, 'cow');
        const file = storage.open(cow, { create: false });
        const slotOffset = file.size() - regions * regionSize + 9 * regionSize; // the data slots end the file
        file.close();
        flipByte(cow, slotOffset + 5);
        const report = volume.scrub({ repair: false });
        assert.deepEqual(summary(report), [{ file: cow, offset: slotOffset, region: 9, repaired: false }]);
        const repaired = volume.scrub({ repair: true });
        assert.deepEqual(summary(repaired), [{ file: cow, offset: slotOffset, region: 9, repaired: true }]);
        assert.match(repaired.findings[0]!.problem, /copy dropped: region 9 .* not point-in-time for this one cycle/);
        assert.ok(volume.nextRegions().includes(9));
        assert.deepEqual(volume.preservedRegions(), [7]);
        runCycle(volume); // finishes this cycle: region 9 goes out with P's data
        runCycle(volume); // the next one resends 7 and 9
        const state = volume.state();
        assert.deepEqual(state.secondary, state.primary);
      } finally {
        volume.close();
      }
      assert.deepEqual(scrub().findings, []);
    },
  );

  test('a pending region (in C, not sent since the open) is not judged; once sent it is', () => {
    makeVolume();
    let volume = ReplicatedVolume.open(storage, dir);
    volume.startCycle(); // C = {9}
    volume.close();
    const image = join(dir, 'secondary', 'image');
    flipByte(image, 9 * regionSize); // as a crash between the image write and the table's would leave it
    volume = ReplicatedVolume.open(storage, dir);
    try {
      assert.deepEqual(volume.scrub({ repair: false }).findings, []);
      volume.transfer(9);
      assert.deepEqual(volume.scrub({ repair: false }).findings, []); // sent: S and its entry agree again
      flipByte(image, 9 * regionSize);
      assert.deepEqual(
        volume.scrub({ repair: false }).findings.map((finding) => finding.region),
        [9],
      );
    } finally {
      volume.close();
    }
  });
});

/**
 * A target of `regions` regions over a real FileReplica, with the primary in memory
 * and the coverage, pending set and own findings given; it records the repair's calls.
 */
function syntheticTarget(
  replica: FileReplica,
  primary: Uint8Array[],
  given: {
    covered?: number[];
    pending?: number[];
    metadata?: TargetFinding[];
    map?: TargetFinding[];
    cow?: TargetFinding[];
  },
  calls: string[],
): ScrubTarget {
  const pending = new Set(given.pending ?? []);
  replica.setPending((region) => pending.has(region));
  return {
    dir,
    regions: primary.length,
    regionSize,
    phase: 'replicating',
    metadataFindings: () => given.metadata ?? [],
    mapFindings: () => given.map ?? [],
    cowFindings: () => given.cow ?? [],
    primaryPath: join(dir, 'primary'),
    readPrimary: (region) => primary[region]!,
    replica,
    covered: (region) => (given.covered ?? []).includes(region),
    pending: (region) => pending.has(region),
    markNext: (marked) => calls.push(`markNext ${marked.join(',')}`),
    rewriteMapPages: () => calls.push('rewriteMapPages'),
    dropCopy: (region) => calls.push(`dropCopy ${region}`),
  };
}

describe('scrubVolume on a given target', () => {
  const targetRegions = 30;
  const finding = (file: string, region: number | null): TargetFinding => ({
    file: join(dir, file),
    offset: 0,
    region,
    problem: 'flipped',
    repaired: false,
  });

  function replicaWith(sent: number[]): FileReplica {
    const secondary = join(root, 'secondary');
    FileReplica.create(storage, secondary, {
      volumeId: new Uint8Array(16),
      regions: targetRegions,
      regionSize,
    }).close();
    const replica = FileReplica.open(storage, secondary, {
      volumeId: new Uint8Array(16),
      regions: targetRegions,
      regionSize,
    });
    replica.writeRegions(sent, (region) => content(region));
    return replica;
  }

  function primaryWith(sent: number[]): Uint8Array[] {
    return Array.from({ length: targetRegions }, (_, region) =>
      sent.includes(region) ? content(region) : new Uint8Array(regionSize),
    );
  }

  test("the volume's own findings: metadata never repaired, a map page marks its range, a COW copy is dropped; X first", () => {
    const replica = replicaWith([3]);
    try {
      const calls: string[] = [];
      const target = syntheticTarget(
        replica,
        primaryWith([3]),
        {
          metadata: [finding('meta', null)],
          map: [{ ...finding('map1', 0), affected: { first: 0, count: 5 } }],
          cow: [finding('cow', 20)],
        },
        calls,
      );
      const report = scrubVolume(target, { repair: false });
      assert.deepEqual(
        report.findings.map((f) => [f.file, f.repaired]),
        [
          [join(dir, 'meta'), false],
          [join(dir, 'map1'), false],
          [join(dir, 'cow'), false],
        ],
      );
      assert.deepEqual(calls, []);
      assert.equal(report.regionsChecked, targetRegions);

      const repaired = scrubVolume(target, { repair: true });
      assert.deepEqual(
        repaired.findings.map((f) => f.repaired),
        [false, true, true],
      );
      assert.deepEqual(repaired.repairedRegions, [0, 1, 2, 3, 4, 20]);
      assert.deepEqual(calls, ['markNext 0,1,2,3,4,20', 'rewriteMapPages', 'dropCopy 20']);
    } finally {
      replica.close();
    }
  });

  test("a pending region's S is not judged; a covered region's P is not judged; both are where neither holds", () => {
    const replica = replicaWith([3, 4]);
    try {
      const primary = primaryWith([3, 4]);
      primary[3] = content(99); // P differs from the digest of region 3
      primary[4] = content(98);
      primary[7] = content(97);
      const calls: string[] = [];
      // 3 covered (written since it went out), 4 not, 7 not: findings for 4 and 7 on P.
      const report = scrubVolume(syntheticTarget(replica, primary, { covered: [3], pending: [4] }, calls), {
        repair: false,
      });
      assert.deepEqual(
        report.findings.map((f) => [f.file, f.region, f.offset]),
        [
          [join(dir, 'primary'), 4, 4 * regionSize],
          [join(dir, 'primary'), 7, 7 * regionSize],
        ],
      );
      // Region 3: covered and not pending, so S is checked (and agrees) and P is not.
      assert.equal(report.regionsChecked, targetRegions);
    } finally {
      replica.close();
    }
  });
});

describe('a power loss inside a batch of transfers (docs/format.md, "DIR2/digests")', () => {
  // Regions on both sides of the first page boundary of the table (1020 entries a page).
  const sentRegions = [3, 1019, 1020, 1050];

  for (const tearInside of [false, true]) {
    test(
      `torn ${tearInside ? 'inside sectors' : 'by sectors'}: the torn page holds pending regions, so it is ` +
        `no finding; the cycle rewrites it and S equals P`,
      () => {
        let crashes = 0;
        for (let k = 0; ; k++) {
          assert.ok(k < 32, 'a batch of more than 32 durable calls');
          dir = join(root, `vol${k}${tearInside ? 't' : 's'}`);
          const created = ReplicatedVolume.create(storage, dir, { regions, regionSize });
          for (const region of sentRegions) created.writeRegion(region, content(region));
          created.startCycle();
          created.close();

          const crashing = new CrashStorage(new NodeStorage());
          const volume = ReplicatedVolume.open(crashing, dir);
          crashing.armCrash({
            afterIo: k,
            mode: 'power',
            torn: true,
            seed: k,
            ...(tearInside ? { tearSector: () => (byte: number) => (byte * 7 + k) % 3 === 0 } : {}),
          });
          let crashed = false;
          try {
            volume.transferRegions(sentRegions);
          } catch (error) {
            if (!isSimulatedCrash(error)) throw error;
            crashed = true;
          }
          try {
            volume.close();
          } catch {
            // The crashed storage refuses every call; the files are already the post-crash state.
          }
          if (!crashed) break;
          crashes++;

          const context = `crash after durable call ${k} of the batch`;
          const recovered = ReplicatedVolume.open(storage, dir);
          try {
            assert.equal(recovered.phase, 'replicating', context);
            assert.deepEqual(
              recovered.scrub({ repair: false }).findings,
              [],
              `${context}: a pending region's torn page or stale entry is no finding`,
            );
            runCycle(recovered);
            const state = recovered.state();
            assert.deepEqual(state.secondary, state.primary, `${context}: S equals P after the cycle`);
            assert.deepEqual(recovered.scrub({ repair: false }).findings, [], `${context}: clean after the cycle`);
          } finally {
            recovered.close();
          }
        }
        // 4 image writes, 1 write of the two adjacent pages, 2 syncs: a crash after each of the first 7 calls... at least 6.
        assert.ok(crashes >= 6, `only ${crashes} crash points inside the batch`);
      },
    );
  }
});

describe('a power loss inside scrub --repair', () => {
  test('after a crash at any durable call of the repair, scrub --repair again and one cycle make S equal P', () => {
    let crashes = 0;
    for (let k = 0; ; k++) {
      assert.ok(k < 64, 'a repair of more than 64 durable calls');
      dir = join(root, `repair${k}`);
      makeVolume();
      flipByte(join(dir, 'secondary', 'image'), 1500 * regionSize + 1); // a region of S
      flipByte(join(dir, 'secondary', 'digests'), 8); // page 0 of the table: regions 0..1019
      flipByte(join(dir, 'primary'), 2000 * regionSize); // an uncovered region of P

      const crashing = new CrashStorage(new NodeStorage());
      const volume = ReplicatedVolume.open(crashing, dir);
      crashing.armCrash({ afterIo: k, mode: 'power', torn: true, seed: k });
      let crashed = false;
      try {
        volume.scrub({ repair: true });
      } catch (error) {
        if (!isSimulatedCrash(error)) throw error;
        crashed = true;
      }
      try {
        volume.close();
      } catch {
        // The crashed storage refuses every call.
      }
      if (crashed) crashes++;

      const again = scrub(true);
      assert.ok(
        again.findings.every((finding) => finding.repaired),
        `crash after call ${k}: what is left is repaired`,
      );
      cycleUntilEqual();
      assert.deepEqual(scrub().findings, [], `crash after call ${k}: clean after the cycle`);
      removeTree(dir);
      if (!crashed) break;
    }
    assert.ok(crashes >= 3, `only ${crashes} crash points inside the repair`);
  });
});
