// Every trace in traces/ is a test: each is replayed on the model alone, and on
// the model and the reference implementation side by side. A trace whose header
// needs the feature `consistent` (docs/traces.md) runs on the reference with a
// consistent secondary, whose image D is compared with the model's after every step.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createReferenceSut } from '../harness/sut/referenceSut.ts';
import { formatFailure, replayTrace } from '../harness/replay.ts';
import { readTrace } from '../harness/trace/reader.ts';
import { traceFiles } from '../harness/trace/traceFiles.ts';

const root = fileURLToPath(new URL('.', import.meta.url));
const files = traceFiles(root);

describe('every trace in traces/', () => {
  it('includes the FIG. 4 trace and the scenarios', () => {
    assert.ok(files.some((file) => file.endsWith('fig4.jsonl')));
    assert.ok(files.filter((file) => file.includes('/scenarios/')).length >= 30);
    assert.ok(files.filter((file) => file.includes('/consistent/')).length >= 4);
  });
  for (const file of files) {
    const name = file.slice(root.length);
    it(`${name} says in a # comment what it shows`, () => {
      const lines = readFileSync(file, 'utf8').split('\n');
      assert.ok(lines.slice(1).some((line) => line.trimStart().startsWith('#')));
    });
    it(`${name} on the model`, async () => {
      const result = await replayTrace(readTrace(readFileSync(file, 'utf8'), file), null);
      assert.equal(result.failure, null, result.failure === null ? '' : formatFailure(result.failure));
    });
    it(`${name} on the model and the reference implementation`, async () => {
      const trace = readTrace(readFileSync(file, 'utf8'), file);
      const consistent = trace.header.features?.includes('consistent') === true;
      const result = await replayTrace(trace, createReferenceSut({ consistent }));
      assert.equal(result.failure, null, result.failure === null ? '' : formatFailure(result.failure));
    });
  }
});
