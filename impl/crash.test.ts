// Crashes inside every operation, after each of its durable I/O calls, in the
// three models of docs/protocol.md section 5: process (every write kept), power (each
// unsynced write kept or dropped whole) and torn (each unsynced write kept or
// dropped per sector of impl/geometry.ts's sectorSize). After recovery the state
// must be one that section 5 allows, and INV-COVER must hold. The crash layer is
// the harness's (harness/crash/, through the storage double family), over
// node:fs; crashes are armed after create, when every namespace operation is
// already durable, and the operations truncate nothing: only file writes are
// kept, dropped or torn, by the choices of each mode.
//
// A second suite kills the process inside each operation, recovers and finishes
// the cycle on storage that still owes the killed process's unsynced writes, and
// then loses power: what recovery built must survive, so recovery must not take
// page-cache contents for durable ones.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { sectorSize } from './geometry.ts';
import { makeTemporaryDir, NodeStorage, removeTree } from './nodeStorage.ts';
import { ReplicatedVolume, type VolumeState } from './replicatedVolume.ts';
import { runCycle } from './runCycle.ts';
import {
  type ArmCrashOptions,
  type CrashReport,
  CrashStorage,
  isSimulatedCrash,
} from '../harness/storage/storageDoubles.ts';

/** A small seeded generator (mulberry32) for the keep/drop coins. */
function coins(seed: number): () => boolean {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) % 2 === 0;
  };
}

interface Mode {
  name: string;
  torn: boolean;
  keep: () => (writeIndex: number, sectorIndex: number) => boolean;
}

/** The crash layer's crash for a mode: the kind of crash, and the mode's keep choices for the unsynced writes. */
function crashOf(mode: Mode): Omit<ArmCrashOptions, 'afterIo'> {
  if (mode.name === 'process') return { mode: 'process' };
  const keep = mode.keep();
  if (mode.torn) return { mode: 'power', torn: true, keepSector: keep };
  return { mode: 'power', keepWrite: (writeIndex) => keep(writeIndex, 0) };
}

/** Nothing but file writes was unsynced at the crash (see the header). */
function assertWritesOnly(report: CrashReport | null, context: string): void {
  assert.ok(report !== null, `${context}: no crash report`);
  assert.deepEqual([report.truncates, report.namespace], [[], []], `${context}: an unsynced truncate or name`);
}

const modes: Mode[] = [
  { name: 'process', torn: false, keep: () => () => true },
  { name: 'power, all lost', torn: false, keep: () => () => false },
  ...[1, 2, 3].map(
    (seed): Mode => ({
      name: `power, seed ${seed}`,
      torn: false,
      keep: () => {
        const coin = coins(seed);
        const decided = new Map<number, boolean>();
        return (writeIndex) => {
          if (!decided.has(writeIndex)) decided.set(writeIndex, coin());
          return decided.get(writeIndex)!;
        };
      },
    }),
  ),
  ...[1, 2, 3, 4].map((seed): Mode => ({ name: `torn, seed ${seed}`, torn: true, keep: () => coins(seed * 7919) })),
];

const regions = 4;
const regionSize = 2 * sectorSize;

/** A region filled with its label, repeated, so that each sector tells old from new. */
function content(text: string): Uint8Array {
  const bytes = new Uint8Array(regionSize);
  const encoded = new TextEncoder().encode(`${text}.`);
  for (let i = 0; i < regionSize; i++) bytes[i] = encoded[i % encoded.length]!;
  return bytes;
}

interface Scenario {
  name: string;
  setup: (volume: ReplicatedVolume) => void;
  kind: 'write' | 'transfer' | 'transferRegions' | 'startCycle' | 'completeCycle';
  region: number;
  /** transferRegions: the regions sent, `region` among them. */
  regions?: number[];
  data?: Uint8Array;
}

function cycle(volume: ReplicatedVolume): void {
  volume.startCycle();
  for (const region of volume.currentRegions()) volume.transfer(region);
  volume.completeCycle();
}

const idle = (volume: ReplicatedVolume) => {
  ['A0', 'B0', 'C0', 'D0'].forEach((text, region) => {
    volume.writeRegion(region, content(text));
  });
  cycle(volume);
  volume.writeRegion(1, content('B1'));
};
const replicating = (volume: ReplicatedVolume) => {
  idle(volume);
  volume.startCycle();
  volume.writeRegion(3, content('D1'));
};

const scenarios: Scenario[] = [
  { name: 'write idle, next bit set', setup: idle, kind: 'write', region: 1, data: content('B2') },
  { name: 'write idle, next bit clear', setup: idle, kind: 'write', region: 2, data: content('C1') },
  { name: 'startCycle', setup: idle, kind: 'startCycle', region: 0 },
  {
    name: 'write replicating, in C, first in cycle',
    setup: replicating,
    kind: 'write',
    region: 1,
    data: content('B2'),
  },
  {
    name: 'write replicating, outside C, first in cycle',
    setup: replicating,
    kind: 'write',
    region: 0,
    data: content('A1'),
  },
  { name: 'write replicating, already preserved', setup: replicating, kind: 'write', region: 3, data: content('D2') },
  { name: 'transfer from P', setup: replicating, kind: 'transfer', region: 1 },
  {
    name: 'transfer from the COW copy',
    setup: (volume) => {
      replicating(volume);
      volume.writeRegion(1, content('B2'));
    },
    kind: 'transfer',
    region: 1,
  },
  {
    name: 'transferRegions, two regions and one sync',
    setup: (volume) => {
      idle(volume);
      volume.writeRegion(2, content('C1'));
      volume.startCycle();
      volume.writeRegion(2, content('C2'));
    },
    kind: 'transferRegions',
    region: 1,
    regions: [1, 2],
  },
  {
    name: 'completeCycle',
    setup: (volume) => {
      replicating(volume);
      volume.writeRegion(1, content('B2'));
      volume.transfer(1);
    },
    kind: 'completeCycle',
    region: 0,
  },
];

function run(volume: ReplicatedVolume, scenario: Scenario): void {
  if (scenario.kind === 'write') volume.writeRegion(scenario.region, scenario.data!);
  else if (scenario.kind === 'transfer') volume.transfer(scenario.region);
  else if (scenario.kind === 'transferRegions') volume.transferRegions(scenario.regions!);
  else if (scenario.kind === 'startCycle') volume.startCycle();
  else volume.completeCycle();
}

/**
 * Creates a volume in `dir` on `storage`, sets the scenario up, then runs its
 * operation armed to crash as `crash` says after durable call `k`; when it made
 * fewer calls and completed, the crash comes right after it. True when it
 * crashed inside the operation.
 */
function crashInside(
  storage: CrashStorage,
  dir: string,
  scenario: Scenario,
  k: number,
  crash: Omit<ArmCrashOptions, 'afterIo'>,
): boolean {
  const volume = ReplicatedVolume.create(storage, dir, { regions, regionSize });
  scenario.setup(volume);
  assert.equal(storage.unsyncedWriteCount(), 0, 'armed with unsynced writes about');
  storage.armCrash({ afterIo: k, ...crash });
  try {
    run(volume, scenario);
  } catch (error) {
    if (!isSimulatedCrash(error)) throw error;
    assertWritesOnly(error.report, `${scenario.name}, crash after durable call ${k}`);
    return true;
  }
  assertWritesOnly(storage.crashNow(crash.mode, crash), `${scenario.name}, crash after it completed`);
  return false;
}

/** Every sector of `bytes` is that sector of `a` or of `b`. */
function isSectorMix(bytes: Uint8Array, a: Uint8Array, b: Uint8Array): boolean {
  for (let start = 0; start < bytes.length; start += sectorSize) {
    const sector = bytes.subarray(start, start + sectorSize);
    if (
      !isDeepStrictEqual(sector, a.subarray(start, start + sectorSize)) &&
      !isDeepStrictEqual(sector, b.subarray(start, start + sectorSize))
    )
      return false;
  }
  return true;
}

interface Observed {
  state: VolumeState;
  primary: Uint8Array;
  secondary: Uint8Array;
  /** S, every region. */
  secondaries: Uint8Array[];
}

function observe(volume: ReplicatedVolume, region: number): Observed {
  const secondaries = Array.from({ length: regions }, (_, r) => volume.readRegion(r, 'secondary'));
  return { state: volume.state(), primary: volume.readRegion(region), secondary: secondaries[region]!, secondaries };
}

/** The state with region `region`'s entries blanked, to compare everything else. */
function without(state: VolumeState, region: number, fields: Array<'primary' | 'secondary' | 'next' | 'cow'>) {
  const blank = <T>(values: readonly T[], field: string) =>
    values.map((value, r) => (r === region && fields.includes(field as never) ? '*' : value));
  return {
    phase: state.phase,
    current: state.current,
    next: blank([...state.next], 'next').join(''),
    cow: blank([...state.cow], 'cow').join(''),
    cowData: blank(state.cowData, 'cow'),
    primary: blank(state.primary, 'primary'),
    secondary: blank(state.secondary, 'secondary'),
  };
}

function assertAllowed(
  scenario: Scenario,
  mode: Mode,
  was: Observed,
  will: Observed,
  got: Observed,
  context: string,
): void {
  const r = scenario.region;
  const [b, a, g] = [was.state, will.state, got.state];
  if (scenario.kind === 'startCycle' || scenario.kind === 'completeCycle') {
    assert.ok(isDeepStrictEqual(g, b) || isDeepStrictEqual(g, a), `${context}: neither the state before nor after`);
    return;
  }
  if (scenario.kind === 'transferRegions') {
    const listed = scenario.regions!;
    const others = (state: VolumeState) => ({
      ...state,
      secondary: state.secondary.filter((_, region) => !listed.includes(region)),
    });
    assert.deepEqual(others(g), others(b), `${context}: more than S of ${listed.join(', ')} changed`);
    for (const region of listed) {
      const allowed = mode.torn
        ? isSectorMix(got.secondaries[region]!, was.secondaries[region]!, will.secondaries[region]!)
        : g.secondary[region] === b.secondary[region] || g.secondary[region] === a.secondary[region];
      assert.ok(allowed, `${context}: S[${region}] is not old, new${mode.torn ? ' or a sector mix' : ''}`);
    }
    return;
  }
  if (scenario.kind === 'transfer') {
    assert.deepEqual(
      without(g, r, ['secondary']),
      without(b, r, ['secondary']),
      `${context}: more than S[${r}] changed`,
    );
    const allowed = mode.torn
      ? isSectorMix(got.secondary, was.secondary, will.secondary)
      : g.secondary[r] === b.secondary[r] || g.secondary[r] === a.secondary[r];
    assert.ok(allowed, `${context}: S[${r}] is not old, new${mode.torn ? ' or a sector mix' : ''}`);
    return;
  }
  assert.deepEqual(
    without(g, r, ['primary', 'next', 'cow']),
    without(b, r, ['primary', 'next', 'cow']),
    `${context}: more than P, X, W of ${r} changed`,
  );
  const primaryOld = g.primary[r] === b.primary[r];
  const primaryAllowed = mode.torn
    ? isSectorMix(got.primary, was.primary, will.primary)
    : primaryOld || g.primary[r] === a.primary[r];
  assert.ok(primaryAllowed, `${context}: P[${r}] is not old, new${mode.torn ? ' or a sector mix' : ''}`);
  assert.ok(g.next[r] === b.next[r] || g.next[r] === a.next[r], `${context}: X[${r}]`);
  const cowBefore = g.cow[r] === b.cow[r] && g.cowData[r] === b.cowData[r];
  const cowAfter = g.cow[r] === a.cow[r] && g.cowData[r] === a.cowData[r];
  assert.ok(cowBefore || cowAfter, `${context}: W[${r}] is neither empty nor the preserved old P[${r}]`);
  if (!primaryOld)
    assert.ok(
      g.next[r] === '1' && cowAfter,
      `${context}: P[${r}] changed before its next bit and COW copy were durable`,
    );
}

function assertCovered(state: VolumeState, context: string): void {
  for (let region = 0; region < regions; region++) {
    if (state.primary[region] !== state.secondary[region]) {
      assert.ok(
        state.current[region] === '1' || state.next[region] === '1',
        `${context}: INV-COVER fails for region ${region}`,
      );
    }
  }
}

let root: string;
let caseCount = 0;
before(() => {
  root = makeTemporaryDir('cowmap-crash-');
});
after(() => removeTree(root));

describe('crash inside an operation (docs/protocol.md section 5)', () => {
  for (const scenario of scenarios) {
    test(scenario.name, () => {
      const plain = new NodeStorage();
      const reference = ReplicatedVolume.create(plain, join(root, `${caseCount++}`), { regions, regionSize });
      scenario.setup(reference);
      const was = observe(reference, scenario.region);
      run(reference, scenario);
      const will = observe(reference, scenario.region);
      reference.close();

      let crashes = 0;
      for (const mode of modes) {
        for (let k = 0; ; k++) {
          assert.ok(k < 32, 'an operation of more than 32 durable calls');
          const dir = join(root, `${caseCount++}`);
          // Completed: the crash comes right after it, and must change nothing.
          const crashed = crashInside(new CrashStorage(plain), dir, scenario, k, crashOf(mode));
          const recovered = ReplicatedVolume.open(plain, dir);
          const got = observe(recovered, scenario.region);
          const context = `${scenario.name}, ${mode.name}, crash after durable call ${k}${crashed ? '' : ' (completed)'}`;
          if (crashed) assertAllowed(scenario, mode, was, will, got, context);
          else assert.deepEqual(got.state, will.state, `${context}: not exactly the state after`);
          assertCovered(got.state, context);
          assert.deepEqual(
            recovered.unsentRegions(),
            recovered.currentRegions(),
            `${context}: something counts as sent after recovery`,
          );
          recovered.close();
          removeTree(dir);
          if (!crashed) break;
          crashes++;
        }
      }
      assert.ok(crashes >= modes.length, 'every operation has at least one durable call to crash after');
    });
  }
});

describe('a power loss after a kill, a recovery and a completed cycle (docs/protocol.md section 5, rules 2 and 4)', () => {
  for (const scenario of scenarios) {
    test(scenario.name, () => {
      const plain = new NodeStorage();
      let kills = 0;
      for (let k = 0; ; k++) {
        assert.ok(k < 32, 'an operation of more than 32 durable calls');
        const dir = join(root, `${caseCount++}`);
        const killed = new CrashStorage(plain);
        const crashed = crashInside(killed, dir, scenario, k, { mode: 'process' });
        // Recovery and a whole cycle on storage that still owes the killed process's writes.
        const later = new CrashStorage(plain);
        killed.handOverTo(later);
        const recovered = ReplicatedVolume.open(later, dir);
        // The cycle that recovery resumed, if any, run to completion.
        if (recovered.phase === 'replicating') runCycle(recovered);
        const settled = recovered.state();
        const context = `${scenario.name}, killed after durable call ${k}${crashed ? '' : ' (completed)'}`;
        assertCovered(settled, context);
        // Power loss: every write, truncate and name not made durable by now is lost.
        later.crashNow('power', { keepWrite: () => false, keepTruncate: () => false, keepNamespace: () => false });
        const reopened = ReplicatedVolume.open(plain, dir);
        assert.deepEqual(
          reopened.state(),
          settled,
          `${context}, then a power loss: not the state that recovery and the cycle left`,
        );
        reopened.close();
        removeTree(dir);
        if (!crashed) break;
        kills++;
      }
      assert.ok(kills >= 1, 'every operation has at least one durable call to crash after');
    });
  }
});
