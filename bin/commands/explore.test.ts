// The counterexample trace `cowmap explore` writes when the violation lies inside an
// operation: a crash point on that step, then the recover that judges it, so that the
// trace reads back and replays on the model (docs/traces.md, "Crashes inside an
// operation").

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exploreRegionSize, regionName } from '../../model/exploreEvents.ts';
import { explore } from '../../model/explorer.ts';
import { copyOnWriteByNextBit } from '../../model/plantedRules.ts';
import { replayTrace } from '../../harness/replay.ts';
import { readTrace } from '../../harness/trace/reader.ts';
import { formatTrace } from '../../harness/trace/writer.ts';
import { counterexampleRecords } from './explore.ts';

describe('cowmap explore counterexamples', () => {
  it('mark a crash inside an operation with a crash point, end with recover, and replay on the model', async () => {
    const regions = 2;
    // Only a crash inside a write reaches this planted bug (model/plantedRules.ts).
    const result = explore({ regions, values: 2, crash: true, statesMax: 1_000_000, step: copyOnWriteByNextBit });
    assert.ok(result.violation !== null, 'the planted bug is found');
    const { path, crashInside } = result.violation;
    const insideAt = crashInside.findIndex((outcome) => outcome !== null);
    assert.ok(insideAt >= 0, `the path crashes inside an operation: ${path.map((op) => op.type).join(', ')}`);

    const names = Array.from({ length: regions }, (_, region) => regionName(region, regions));
    const records = counterexampleRecords(regions, path, crashInside, names);
    const fields = records.map((record) => record as Readonly<Record<string, unknown>>);
    assert.deepEqual(
      { crashAfterIo: fields[insideAt]!.crashAfterIo, mode: fields[insideAt]!.mode },
      { crashAfterIo: 0, mode: 'power' },
    );
    const recoverAfter = fields.slice(insideAt + 1).find((record) => record.op === 'recover');
    assert.ok(recoverAfter !== undefined, 'a recover follows the crash point');

    const text = formatTrace(
      { regions, regionSize: exploreRegionSize, names, title: 'explore counterexample' },
      ['a crash inside an operation'],
      records,
    );
    const replayed = await replayTrace(readTrace(text, 'counterexample.jsonl'), null);
    // The model itself is right: the trace of the planted bug replays on it without a failure.
    assert.equal(replayed.failure, null, JSON.stringify(replayed.failure));
    assert.ok(replayed.branches > 1, 'the model-only replay forks into the allowed outcomes');
  });
});
