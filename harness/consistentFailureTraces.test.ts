// A failure found on volumes that keep a consistent image (the conformance level
// consistent runs its checks on such volumes) is saved as a trace that needs the
// feature `consistent` (docs/traces.md), so that its replay compares D again: the
// failpoint sweep's and fast-check's saved traces fail again on the broken consistent
// image and pass on the reference, with no wrapper given to the replay.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConsistentWithoutJournal } from './adapter/consistentMutant.ts';
import { runFailpointSweep } from './failpointSweep.ts';
import { runFuzz } from './fuzz/run.ts';
import { mutantNamed } from './mutants/mutants.ts';
import { formatFailure, replayTrace } from './replay.ts';
import { ReferenceSut } from './sut/referenceSut.ts';
import { consistentVolumes } from './sut/systemUnderTest.ts';
import { readTrace } from './trace/reader.ts';

const scratch = mkdtempSync(join(tmpdir(), 'cowmap-consistent-failures-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const seed = 20_261_130;
const broken = () => new ReferenceSut({ volumeClass: ConsistentWithoutJournal, name: 'consistent-without-journal' });

/** The saved trace needs the feature, fails again on the broken D, and passes on the reference. */
async function checkSaved(tracePath: string): Promise<void> {
  const trace = readTrace(readFileSync(tracePath, 'utf8'), tracePath);
  assert.deepEqual(trace.header.features, ['consistent']);
  const again = await replayTrace(trace, broken());
  assert.ok(again.failure !== null, 'the saved trace passes on the broken consistent image');
  assert.match(formatFailure(again.failure), /consistent/);
  const reference = await replayTrace(trace, new ReferenceSut());
  assert.equal(reference.failure, null, reference.failure === null ? '' : formatFailure(reference.failure));
}

describe(`failure traces of runs on volumes that keep a consistent image (seed ${seed})`, () => {
  it('the failpoint sweep saves its failure with the feature consistent', async () => {
    const result = await runFailpointSweep({
      geometry: { regions: 2, regionSize: 512 },
      modes: ['process'],
      seed,
      failuresDir: join(scratch, 'sweep'),
      makeSut: () => consistentVolumes(broken()),
      situationNames: ['transfer from the primary'],
    });
    assert.ok(result.failure !== null, 'the sweep misses a consistent image without a journal');
    await checkSaved(result.failure.tracePath);
  });

  it('fast-check saves its shortest failing sequence with the feature consistent', async () => {
    const result = await runFuzz({
      seed,
      numRuns: 20,
      regions: 2,
      commandsMax: 20,
      crashModes: [],
      makeSut: () => consistentVolumes(broken()),
      failuresDir: join(scratch, 'fuzz'),
    });
    assert.ok(result.failure !== null, 'fast-check misses a consistent image without a journal');
    assert.ok(result.failure.reproduced, 'the saved trace does not fail again');
    await checkSaved(result.failure.tracePath);
  });

  it('a run on volumes without a consistent image saves no features', async () => {
    const result = await runFailpointSweep({
      geometry: { regions: 2, regionSize: 512 },
      modes: ['process'],
      seed,
      failuresDir: join(scratch, 'plain'),
      // A transfer that sends the primary fails without D: the trace needs no feature.
      makeSut: () => new ReferenceSut({ volumeClass: mutantNamed('transfer-sends-primary').volumeClass }),
      situationNames: ['transfer from the COW view'],
    });
    assert.ok(result.failure !== null, 'the sweep misses a transfer that sends the primary');
    const trace = readTrace(readFileSync(result.failure.tracePath, 'utf8'), result.failure.tracePath);
    assert.equal(trace.header.features, undefined);
  });
});
