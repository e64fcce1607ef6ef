// The crash exploration of the NBD write path (bufferedWrites.ts): the reference
// volume passes it, the histories exercise what they claim to, and planted bugs of
// the durable order are caught. Random: the seed is printed, and
// COWMAP_BUFFERED_SEED replays from it (history i has seed + i; a failure names
// the history's own seed, which replays it first).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ReplicatedVolume, type ByteWrite } from '../../impl/replicatedVolume.ts';
import { atLevel } from '../testLevel.ts';
import type { VolumeClass } from '../types.ts';
import { MemoryStorage } from '../storage/memoryStorage.ts';
import { type BufferedHistory, makeHistory, type PrimaryPromise } from './bufferedHistory.ts';
import { primaryProblems } from './bufferedVerdict.ts';
import { describeFailures, exploreBufferedWrites } from './bufferedWrites.ts';

const seedVariable = 'COWMAP_BUFFERED_SEED';
const seed = Number(process.env[seedVariable] ?? 20261130);
/** About 4 s at the quick level on a quiet core (make test), about a minute of CPU at the full one (make verify). */
const historyCount = atLevel(16, 300);
/** A planted bug has this many histories to be caught in. */
const plantedHistoryCount = atLevel(40, 100);

function regionsOf(writes: readonly ByteWrite[], regionSize: number): number[] {
  const touched = new Set<number>();
  for (const { offset, bytes } of writes) {
    for (let r = Math.floor(offset / regionSize); r <= Math.floor((offset + bytes.length - 1) / regionSize); r++) {
      touched.add(r);
    }
  }
  return [...touched].sort((a, b) => a - b);
}

/** Planted: while replicating, the writes' bytes go into P before the COW copies are synced. */
class PrimaryBeforeCowSync extends ReplicatedVolume {
  override writeMany(writes: readonly ByteWrite[]): void {
    if (this.phase !== 'replicating') {
      super.writeMany(writes);
      return;
    }
    const touched = regionsOf(writes, this.regionSize);
    const fresh = touched.filter((region) => this.needsPreserve(region));
    // The old contents are read first, so the copies are right: only the order is wrong.
    const old = new Map(fresh.map((region) => [region, this.primary.readRegion(region).slice()]));
    for (const { offset, bytes } of writes) this.primary.file.write(this.primary.baseOffset + offset, bytes);
    this.primaryUnsynced = true;
    this.cow.preserveMany(fresh, (region) => old.get(region)!, this.cycle);
    for (const region of touched) this.markNext(region);
  }
}

/** Planted: the swap does not sync P first (flush still does, later). */
class SwapWithoutSync extends ReplicatedVolume {
  override startCycle(): void {
    const unsynced = this.primaryUnsynced;
    this.primaryUnsynced = false;
    super.startCycle();
    this.primaryUnsynced = unsynced;
  }
}

/** Planted: flush returns without syncing P. */
class FlushWithoutSync extends ReplicatedVolume {
  override flush(): void {
    this.primaryUnsynced = false;
  }
}

/** Planted: open reads the files without syncing them first, so recovery trusts the page cache's P. */
class TrustsPageCache extends ReplicatedVolume {
  protected static override readonly syncFilesAtOpen: boolean = false;
}

describe('the NBD write path survives a crash after every durable call (docs/format.md, "The buffered write path")', () => {
  test(`${historyCount} seeded histories, each crashed in the three fault modes and by a kill whose recovery loses power`, () => {
    console.log(`buffered-writes seed: ${seed} (histories ${historyCount}; set ${seedVariable} to replay)`);
    const result = exploreBufferedWrites({ seed, historyCount });
    console.log(
      `buffered writes: ${result.histories} histories, ${result.crashPoints} crash points, ` +
        `${result.outcomesJudged} outcomes judged (${result.crashesInside} crashes inside a call)`,
    );
    assert.equal(result.failures.length, 0, describeFailures(result.failures));
    assert.equal(result.histories, historyCount);
    assert.ok(result.crashPoints >= historyCount * 8, 'every history has durable calls to crash after');
    assert.equal(result.outcomesJudged, result.crashPoints * 4, 'each crash point judged in each of the four ways');
  });

  test('the histories hold what the exploration claims to crash inside', () => {
    const seen = new Map<string, number>();
    const note = (what: string): void => {
      seen.set(what, (seen.get(what) ?? 0) + 1);
    };
    for (let index = 0; index < historyCount; index++) noteHistory(makeHistory(seed + index), note);
    console.log(`buffered-writes histories hold: ${[...seen].map(([what, count]) => `${what} ${count}`).join(', ')}`);
    const expected = [
      'writeMany idle',
      'writeMany replicating',
      'write inside a region',
      'write across regions',
      'batch of 4',
      'flush idle',
      'flush replicating',
      'reopen idle',
      'reopen replicating',
      'startCycle after unflushed writes',
      'transferRegions',
      'completeCycle',
    ];
    for (const what of expected) assert.ok((seen.get(what) ?? 0) > 0, `no history holds: ${what}`);
  });
});

/** Notes the kinds of call and write of a history, with the phase each ran in. */
function noteHistory(history: BufferedHistory, note: (what: string) => void): void {
  let phase = 'idle';
  let unflushed = false;
  for (const call of history.calls) {
    if (call.kind === 'writeMany') {
      note(`writeMany ${phase}`);
      if (call.writes.length === 4) note('batch of 4');
      for (const { offset, bytes } of call.writes) {
        const first = Math.floor(offset / history.regionSize);
        const last = Math.floor((offset + bytes.length - 1) / history.regionSize);
        note(first === last ? 'write inside a region' : 'write across regions');
      }
      unflushed = true;
    } else if (call.kind === 'flush' || call.kind === 'reopen') {
      note(`${call.kind} ${phase}`);
      unflushed = false;
    } else if (call.kind === 'startCycle') {
      if (unflushed) note('startCycle after unflushed writes');
      phase = 'replicating';
      unflushed = false;
    } else {
      note(call.kind);
      if (call.kind === 'completeCycle') phase = 'idle';
    }
  }
}

describe('the judgement of P can fail', () => {
  const durable = new Uint8Array(8);
  const promise: PrimaryPromise = {
    durable,
    since: [{ offset: 2, bytes: Uint8Array.of(5, 6) }],
    current: Uint8Array.of(0, 0, 5, 6, 0, 0, 0, 0),
    swaps: new Map([[0, durable]]),
  };
  const outcome = (fault: 'process' | 'power' | 'torn', got: number[], inFlight: ByteWrite[] = []) =>
    primaryProblems(Uint8Array.from(got), {
      fault,
      files: new MemoryStorage(),
      before: promise,
      after: promise,
      inFlight,
    });

  test('power: old or new per byte passes; a byte from nowhere fails', () => {
    assert.deepEqual(outcome('power', [0, 0, 0, 6, 0, 0, 0, 0]), []);
    assert.equal(outcome('torn', [0, 0, 5, 7, 0, 0, 0, 0]).length, 1);
  });

  test('process: a returned write lost fails; a prefix of the batch in flight passes, a later write alone fails', () => {
    assert.equal(outcome('process', [0, 0, 0, 0, 0, 0, 0, 0]).length, 1);
    const inFlight = [
      { offset: 0, bytes: Uint8Array.of(9) },
      { offset: 7, bytes: Uint8Array.of(9) },
    ];
    assert.deepEqual(outcome('process', [9, 0, 5, 6, 0, 0, 0, 0], inFlight), []);
    assert.equal(outcome('process', [0, 0, 5, 6, 0, 0, 0, 9], inFlight).length, 1);
  });
});

describe('planted bugs of the durable order are caught', () => {
  const planted: [string, VolumeClass][] = [
    ['writeMany writes P before the COW sync', PrimaryBeforeCowSync],
    ['startCycle does not sync P first', SwapWithoutSync],
    ['flush does not sync P', FlushWithoutSync],
    ['open does not sync the files it recovers from', TrustsPageCache],
  ];
  for (const [name, volumeClass] of planted) {
    test(name, () => {
      const result = exploreBufferedWrites({ seed, historyCount: plantedHistoryCount, volumeClass, failuresMax: 1 });
      assert.equal(result.failures.length, 1, `not caught in ${result.histories} histories from seed ${seed}`);
      console.log(`${name}: caught after ${result.outcomesJudged} outcomes; ${describeFailures(result.failures)}`);
    });
  }
});
