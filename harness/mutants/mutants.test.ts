// Each mutant of the classes small tests miss is a real bug: a scenario aimed at its class
// fails on it and passes on the reference implementation. (`cowmap mutants`
// checks that the suite's own generators find them without being aimed.)

import '../noChildCoverage.ts'; // first: the adapters and cowmap processes it starts write no coverage files
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isCowmapError } from '../../impl/errors.ts';
import { makeTemporaryDir, NodeStorage, removeTree } from '../../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import type { Geometry } from '../../model/types.ts';
import { exploreCrashes } from '../exploration/explorer.ts';
import type { ExplorationOptions } from '../exploration/options.ts';
import { mutantNamed, mutants } from './mutants.ts';
import { Prng } from '../prng.ts';
import { ReferenceSut } from '../sut/referenceSut.ts';
import { runScenario } from '../scenario.ts';
import type { ScenarioStep } from '../scenario.ts';
import type { SutOp } from '../sut/systemUnderTest.ts';
import { ContentBook } from '../trace/content.ts';
import { consistentMutantName } from '../adapter/consistentMutant.ts';
import { consistentVolumes } from '../sut/systemUnderTest.ts';

const geometry: Geometry = { regions: 9, regionSize: 1024 };
const seed = 11;

/** Seeded full-region bytes, each with a zero byte in its middle (short label data would hide some mutants). */
function contents(count: number): Uint8Array[] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, () => {
    const bytes = new Uint8Array(geometry.regionSize);
    for (let i = 0; i < bytes.length; i++) bytes[i] = 1 + (prng.nextUint32() % 255);
    bytes[geometry.regionSize / 2 + 3] = 0;
    return bytes;
  });
}

const data = contents(4);
const op = (sutOp: SutOp): ScenarioStep => ({ kind: 'op', op: sutOp });
const write = (region: number, value: number): ScenarioStep => op({ type: 'write', region, data: data[value]! });
const startCycle = op({ type: 'startCycle' });
const transfer = (region: number): ScenarioStep => op({ type: 'transfer', region });
const completeCycle = op({ type: 'completeCycle' });
const cycleOf = (region: number, value: number): ScenarioStep[] => [
  write(region, value),
  startCycle,
  transfer(region),
  completeCycle,
];

/** For each mutant of the new classes: a scenario aimed at its bug. */
const aimed: Readonly<Record<string, readonly ScenarioStep[]>> = {
  'transfer-sends-primary-from-region-8': [write(8, 0), startCycle, write(8, 1), transfer(8)],
  'write-first-sector-only': [write(0, 0), write(0, 1)],
  'transfer-stops-at-zero-byte': [write(1, 0), startCycle, transfer(1)],
  'map-keeps-8-bits': [write(8, 0)],
  // 51 accepted operations, then the first write of a cycle.
  'cow-stops-after-50-ops': [
    ...Array.from({ length: 51 }, (_, index) => write(index % 3, index % 4)),
    startCycle,
    write(0, 2),
  ],
  'third-cycle-keeps-next-bit': [...cycleOf(0, 0), ...cycleOf(1, 1), ...cycleOf(2, 2)],
  // A kill right after the first half's sync.
  'transfer-two-halves': [
    write(0, 0),
    startCycle,
    {
      kind: 'crashInside',
      op: { type: 'transfer', region: 0 },
      crash: { afterIo: 2, mode: 'process', seed: 0, torn: false },
    },
    { kind: 'recover' },
  ],
  // A transfer shows in D before its cycle completes; on volumes that keep D, as the level consistent makes them.
  [consistentMutantName]: [write(0, 0), startCycle, transfer(0)],
};

/** The mutants whose bug only volumes that keep a consistent image show (their aimed scenario runs on such volumes). */
const onConsistentVolumes: readonly string[] = [consistentMutantName];

async function run(
  volumeClass: typeof ReplicatedVolume,
  name: string,
  steps: readonly ScenarioStep[],
  consistent = false,
) {
  const sut = new ReferenceSut({ volumeClass, name });
  return runScenario(consistent ? consistentVolumes(sut) : sut, geometry, steps, new ContentBook(geometry.regionSize));
}

describe(`mutants of the classes small tests miss (seed ${seed})`, () => {
  for (const [name, steps] of Object.entries(aimed)) {
    it(`${name}: an aimed scenario fails on it and passes on the reference`, async () => {
      const consistent = onConsistentVolumes.includes(name);
      const broken = await run(mutantNamed(name).volumeClass, `mutant ${name}`, steps, consistent);
      assert.ok(broken.failure !== null, `mutant ${name} passed its aimed scenario`);
      const reference = await run(ReplicatedVolume, 'the reference implementation', steps, consistent);
      assert.equal(reference.failure, null, reference.failure?.message);
    });
  }

  it('every mutant of these classes that the generic nets miss has an aimed scenario here', () => {
    const atOpen = ['accepts-unaligned-region-size', 'creates-over-existing', 'ignores-lock'];
    const missedByNets = Object.entries(mutants)
      .filter(
        ([name, mutant]) =>
          mutant.reachedBy !== undefined &&
          !mutant.reachedBy.includes('fuzz') &&
          !mutant.reachedBy.includes('crashes') &&
          !mutant.reachedBy.includes('crashes-wide') &&
          !atOpen.includes(name),
      )
      .map(([name]) => name);
    assert.ok(missedByNets.length >= 4);
    for (const name of missedByNets) assert.ok(Object.hasOwn(aimed, name), `no aimed scenario for ${name}`);
    // The names-and-integrity mutants need what the adapter protocol cannot ask for (names that a
    // power loss takes back, rot, tears inside a sector, crashes inside create or
    // recovery): the crash exploration reaches them, tested below.
    for (const [name, mutant] of Object.entries(mutants)) {
      if (namesAndIntegrityMutants.includes(name)) continue;
      assert.ok(mutant.reachedBy === undefined || mutant.reachedBy.includes('conform'), `conform must reach ${name}`);
    }
  });

  it('the geometry mutants behave on 8 regions or fewer of one sector, with label data', async () => {
    // What the verify stages run: the mutants are correct there, which is why only conform reaches them.
    const small: Geometry = { regions: 2, regionSize: 512 };
    const book = new ContentBook(small.regionSize);
    const label = (text: string) => {
      const bytes = new Uint8Array(small.regionSize);
      bytes.set(new TextEncoder().encode(text));
      return bytes;
    };
    const steps: ScenarioStep[] = [
      op({ type: 'write', region: 1, data: label('A1') }),
      startCycle,
      op({ type: 'write', region: 1, data: label('A2') }),
      transfer(1),
      completeCycle,
    ];
    for (const name of [
      'transfer-sends-primary-from-region-8',
      'write-first-sector-only',
      'transfer-stops-at-zero-byte',
      'map-keeps-8-bits',
    ]) {
      const result = await runScenario(
        new ReferenceSut({ volumeClass: mutantNamed(name).volumeClass, name }),
        small,
        steps,
        book,
      );
      assert.equal(result.failure, null, `${name}: ${result.failure?.message}`);
    }
  });
});

const namesAndIntegrityMutants = [
  'recovery-without-dir-sync',
  'init-overwrites-files',
  'recovery-ignores-digests',
  'completion-first-map-run',
  'recovery-truncates-map',
  'metadata-in-place',
];

describe('mutants of names and integrity: each caught by the part of the crash exploration aimed at its class', () => {
  const only = { createCrashes: false, recoveryPathsMax: 0, rot: false, failuresDir: null } as const;
  const aimedExplorations: Readonly<Record<string, { options: ExplorationOptions; failure: RegExp }>> = {
    // A create killed after renaming meta, open without syncing DIR, a power loss after acknowledged writes.
    'recovery-without-dir-sync': {
      options: { ...only, length: 0, regions: 2, values: 1, createCrashes: true },
      failure: /E_NOT_FOUND/,
    },
    'init-overwrites-files': {
      options: { ...only, length: 0, regions: 2, values: 1, createCrashes: true },
      failure: /user's files named primary and cow: it succeeded/,
    },
    'recovery-ignores-digests': {
      options: { ...only, length: 2, regions: 2, values: 1, modes: ['process'], rot: true, scrubStatesMax: 0 },
      failure: /rot: a flipped byte at \/volume\/cow/,
    },
    // Regions 0 and 16: next-map bytes 0 and 2, two runs.
    'completion-first-map-run': {
      options: {
        ...only,
        length: 4,
        regions: 17,
        activeRegions: [0, 16],
        values: 1,
        regionSize: 512,
        modes: ['process'],
      },
      failure: /./,
    },
    'recovery-truncates-map': {
      options: { ...only, length: 0, regions: 2, values: 1, recoveryPathsMax: 2 },
      failure: /map1 is 0 bytes/,
    },
    'metadata-in-place': {
      options: { ...only, length: 1, regions: 2, values: 1, modes: ['torn'] },
      failure: /no valid metadata slot/,
    },
  };
  it('every names-and-integrity mutant has an aimed exploration', () => {
    assert.deepEqual(Object.keys(aimedExplorations).sort(), [...namesAndIntegrityMutants].sort());
    for (const name of namesAndIntegrityMutants) assert.ok(Object.hasOwn(mutants, name), name);
  });
  for (const [name, { options, failure }] of Object.entries(aimedExplorations)) {
    it(`${name}: caught`, async () => {
      const result = await exploreCrashes({
        ...options,
        volumeClass: mutantNamed(name).volumeClass,
        volumeName: `mutant ${name}`,
      });
      assert.ok(result.failure !== null, `mutant ${name} was not caught`);
      assert.match(result.failure.message, failure);
    });
  }
  it('the same explorations of the ops alone pass on the reference (the create ones are in crashExploration.test.ts)', async () => {
    for (const name of [
      'recovery-ignores-digests',
      'completion-first-map-run',
      'recovery-truncates-map',
      'metadata-in-place',
    ]) {
      const result = await exploreCrashes({ ...aimedExplorations[name]!.options });
      assert.equal(result.failure, null, `${name}: ${result.failure?.message}`);
    }
  });
});

describe("mutants of the adapter protocol's own rules at open", () => {
  const scratch = makeTemporaryDir('cowmap-mutants-test-');
  after(() => removeTree(scratch));
  const storage = new NodeStorage();
  let count = 0;
  const freshDir = () => join(scratch, `volume-${count++}`);
  /** The error code `body` throws, or null when it returns. */
  const codeOf = (body: () => void): string | null => {
    try {
      body();
      return null;
    } catch (error) {
      if (isCowmapError(error)) return error.code;
      throw error;
    }
  };

  const cases: readonly [string, string, (volumeClass: typeof ReplicatedVolume) => () => void][] = [
    [
      'accepts-unaligned-region-size',
      'E_SIZE',
      (volumeClass) => () => {
        const volume = volumeClass.create(storage, freshDir(), { regions: 2, regionSize: 1000 });
        // Unaligned, it still works: only the protocol's E_SIZE rule catches it.
        volume.writeRegion(1, new Uint8Array(1000).fill(7));
        assert.deepEqual(volume.readRegion(1), new Uint8Array(1000).fill(7));
        volume.close();
      },
    ],
    // Below a sector it still refuses, as the reference does: only the multiple-of-512 rule is broken.
    [
      'accepts-unaligned-region-size',
      'E_SIZE',
      (volumeClass) => () => {
        assert.equal(
          codeOf(() => volumeClass.create(storage, freshDir(), { regions: 2, regionSize: 256 })),
          'E_SIZE',
        );
        volumeClass.create(storage, freshDir(), { regions: 2, regionSize: 513 }).close();
      },
    ],
    [
      'creates-over-existing',
      'E_EXISTS',
      (volumeClass) => () => {
        const dir = freshDir();
        volumeClass.create(storage, dir, geometry).close();
        volumeClass.create(storage, dir, geometry).close();
      },
    ],
    [
      'ignores-lock',
      'E_LOCKED',
      (volumeClass) => () => {
        const dir = freshDir();
        const holder = ReplicatedVolume.create(storage, dir, geometry);
        try {
          volumeClass.open(storage, dir).close();
        } finally {
          holder.close();
        }
      },
    ],
  ];
  for (const [name, code, attempt] of cases) {
    it(`${name}: the reference answers ${code}, the mutant goes on`, () => {
      assert.equal(codeOf(attempt(ReplicatedVolume)), code);
      assert.equal(codeOf(attempt(mutantNamed(name).volumeClass)), null);
    });
  }
});

describe('mutantNamed', () => {
  it('finds every mutant of the table by its name', () => {
    for (const [name, mutant] of Object.entries(mutants)) assert.equal(mutantNamed(name), mutant);
  });
  it('refuses an unknown name, or an inherited key, with the known names', () => {
    for (const name of ['no-such-thing', 'constructor', 'toString']) {
      assert.throws(
        () => mutantNamed(name),
        (error: unknown) =>
          error instanceof RangeError && error.message.startsWith(`no mutant named '${name}' (known: no-cow, `),
      );
    }
  });
});
