// The failpoint sweep: the reference passes every situation in every mode, in
// process and through `cowmap adapter`; the Python example passes in the mode it
// offers; and a volume whose idle write makes its next bit durable after its
// data (the mutant next-bit-after-data) is caught, with a trace that replays.

import './noChildCoverage.ts'; // first: the adapters and cowmap processes it starts write no coverage files
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AdapterSut } from './adapter/adapterSut.ts';
import { picksFor, runFailpointSweep, situations } from './failpointSweep.ts';
import { boundaryRegions } from './geometry.ts';
import { mutantNamed } from './mutants/mutants.ts';
import { ReferenceSut } from './sut/referenceSut.ts';
import { replayTrace } from './replay.ts';
import { readTrace } from './trace/reader.ts';
import { atLevel } from './testLevel.ts';

const bin = fileURLToPath(new URL('../bin/cowmap.js', import.meta.url));
const pythonAdapter = fileURLToPath(new URL('../examples/python-adapter/adapter.py', import.meta.url));
const seed = 20_261_129;
/** The reference's modes in process: make test leaves power out (the adapter tests cover torn and process); make verify runs all three. */
const referenceModes = atLevel(['process', 'torn'] as const, ['process', 'power', 'torn'] as const);
/** The situations run through each adapter (a restart per crash): one in make test, two in make verify. */
const adapterSituations = atLevel(
  ['idle write, first of its region'],
  ['idle write, first of its region', 'completeCycle'],
);

function failuresDir(): string {
  return mkdtempSync(join(tmpdir(), 'cowmap-sweep-test-'));
}

describe('failpoint sweep', () => {
  it("the situations' regions span the volume: every boundary region is picked by some situation and seed, two distinct ones where there are two", () => {
    for (const regions of [1, 2, 9, 65, 1025]) {
      const picked = new Set<number>();
      for (let seed = 0; seed < 50; seed++) {
        for (let index = 0; index < situations.length; index++) {
          const { region, other } = picksFor(regions, index, seed);
          assert.ok(region >= 0 && region < regions && other >= 0 && other < regions);
          if (regions > 1) assert.notEqual(region, other);
          picked.add(region);
        }
      }
      assert.deepEqual(
        [...picked].sort((a, b) => a - b),
        boundaryRegions(regions),
      );
    }
  });

  it(`the reference passes every situation in ${referenceModes.join(', ')} modes (seed ${seed})`, async () => {
    const dir = failuresDir();
    const modes = referenceModes.length;
    try {
      const result = await runFailpointSweep({
        geometry: { regions: 9, regionSize: 1024 },
        modes: [...referenceModes],
        seed,
        failuresDir: dir,
        makeSut: () => new ReferenceSut(),
      });
      assert.equal(result.failure, null, result.failure?.message);
      // Every situation in every mode crashed at least once, and ran once more to completion.
      assert.ok(result.crashPoints >= situations.length * modes, `crash points ${result.crashPoints}`);
      assert.equal(result.runs, result.crashPoints + situations.length * modes);
      assert.ok(result.covered.has('idle:crash') && result.covered.has('replicating:crash'));
      assert.equal(result.swept.length, situations.length * modes);
      for (const entry of result.swept) {
        assert.ok(
          entry.complete && entry.crashPoints >= 1,
          `${entry.situation}, ${entry.mode}: ${entry.crashPoints} crash points, complete ${entry.complete}`,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`catches an idle write whose next bit reaches disk after its data, with a trace that fails again on replay (seed ${seed})`, async () => {
    const dir = failuresDir();
    try {
      const mutant = mutantNamed('next-bit-after-data');
      const result = await runFailpointSweep({
        geometry: { regions: 65, regionSize: 512 },
        modes: ['process'],
        seed,
        failuresDir: dir,
        makeSut: () => new ReferenceSut({ volumeClass: mutant.volumeClass }),
      });
      assert.ok(result.failure !== null, 'the mutant passed the sweep');
      assert.match(result.failure.message, /idle write/);
      assert.match(result.failure.message, /recovered state is not one .*the model allows/);
      assert.ok(existsSync(result.failure.tracePath));
      const trace = readTrace(readFileSync(result.failure.tracePath, 'utf8'), result.failure.tracePath);
      const again = await replayTrace(trace, new ReferenceSut({ volumeClass: mutant.volumeClass }));
      assert.notEqual(again.failure, null, 'the saved trace passes on the mutant');
      const onReference = await replayTrace(trace, new ReferenceSut());
      assert.equal(onReference.failure, null, 'the saved trace fails on the reference');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops between runs when asked', async () => {
    let calls = 0;
    const dir = failuresDir();
    try {
      const result = await runFailpointSweep({
        geometry: { regions: 2, regionSize: 512 },
        modes: ['process'],
        seed,
        failuresDir: dir,
        makeSut: () => new ReferenceSut(),
        shouldStop: () => ++calls > 3,
      });
      assert.equal(result.runs, 3);
      assert.equal(result.failure, null);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects an unknown situation name', async () => {
    await assert.rejects(
      runFailpointSweep({
        geometry: { regions: 2, regionSize: 512 },
        modes: ['process'],
        seed,
        failuresDir: join(tmpdir(), 'cowmap-sweep-never-made'),
        makeSut: () => new ReferenceSut(),
        situationNames: ['idle nap'],
      }),
      /no situation named 'idle nap'/,
    );
  });

  // Through the adapter: a restart per crash, so one situation per mode keeps it short.
  const adapterCases = [
    // The reference through the adapter in torn mode only: its process mode is the mutant test's below.
    { label: '`cowmap adapter`', command: [process.execPath, bin, 'adapter'], modes: ['torn'] as const },
    { label: 'the Python example', command: ['python3', pythonAdapter], modes: ['process'] as const },
  ];
  for (const { label, command, modes } of adapterCases) {
    it(`${label} passes the situations ${adapterSituations.map((name) => `'${name}'`).join(' and ')} (seed ${seed})`, async () => {
      const dir = failuresDir();
      const sut = new AdapterSut(command, { keepProcess: true });
      try {
        const result = await runFailpointSweep({
          geometry: { regions: 9, regionSize: 4096 },
          modes,
          seed,
          failuresDir: dir,
          makeSut: () => sut,
          situationNames: adapterSituations,
        });
        assert.equal(result.failure, null, result.failure?.message);
        assert.ok(result.crashPoints >= adapterSituations.length * modes.length);
      } finally {
        await sut.end();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it(`catches next-bit-after-data through \`cowmap adapter --mutant\` (seed ${seed})`, async () => {
    const dir = failuresDir();
    const sut = new AdapterSut([process.execPath, bin, 'adapter', '--mutant', 'next-bit-after-data'], {
      keepProcess: true,
    });
    try {
      const result = await runFailpointSweep({
        geometry: { regions: 9, regionSize: 512 },
        modes: ['process'],
        seed,
        failuresDir: dir,
        makeSut: () => sut,
        situationNames: ['idle write, first of its region'],
      });
      assert.ok(result.failure !== null, 'the mutant passed the sweep');
      assert.match(result.failure.message, /idle write, first of its region/);
    } finally {
      await sut.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
