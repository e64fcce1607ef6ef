import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readTrace } from './reader.ts';
import { TraceError } from './traceError.ts';

const header = '{"trace": "cowmap", "version": 1, "regions": 4, "regionSize": 512}';

function invalid(text: string, line: number, pattern: RegExp): void {
  assert.throws(
    () => readTrace(text, 'bad.jsonl'),
    (error: unknown) =>
      error instanceof TraceError &&
      error.code === 'E_BAD_REQUEST' &&
      error.line === line &&
      pattern.test(error.message),
  );
}

describe('the trace reader', () => {
  it('reads the FIG. 4 trace', () => {
    const trace = readTrace(readFileSync(new URL('../../traces/fig4.jsonl', import.meta.url), 'utf8'), 'fig4.jsonl');
    assert.deepEqual(trace.header.names, ['A', 'B', 'C', 'D']);
    assert.equal(trace.steps.filter((s) => s.kind === 'expect').length, 8);
    const rangeStep = trace.steps.find((s) => s.kind === 'op' && s.expectError === 'E_RANGE');
    assert.deepEqual(rangeStep?.kind === 'op' ? [rangeStep.region, rangeStep.data] : null, [4, { label: 'E0' }]);
  });

  it('gives default names, ignores comments, blank lines and unknown record fields', () => {
    const trace = readTrace(
      `# a comment\n\n${header}\n  # indented comment\n{"op": "write", "region": "C", "data": "x", "note": "ignored"}\n`,
      't',
    );
    assert.deepEqual(trace.header.names, ['A', 'B', 'C', 'D']);
    assert.deepEqual(trace.steps, [{ kind: 'op', line: 5, op: 'write', region: 2, data: { label: 'x' } }]);
  });

  it('reads the features a trace needs and an expectation of the consistent image D', () => {
    const withD = '{"trace": "cowmap", "version": 1, "regions": 2, "regionSize": 512, "features": ["consistent"]}';
    const trace = readTrace(`${withD}\n{"expect": {"consistent": ["A1", ["", "B1"]]}}\n`, 't');
    assert.deepEqual(trace.header.features, ['consistent']);
    const expect = trace.steps[0]?.kind === 'expect' ? trace.steps[0].expect : null;
    assert.deepEqual(expect?.consistent, [{ label: 'A1' }, [{ label: '' }, { label: 'B1' }]]);
    const two = '{"trace": "cowmap", "version": 1, "regions": 2, "regionSize": 512}';
    invalid(`${two}\n{"expect": {"consistent": ["A1"]}}\n`, 2, /consistent must list 2 contents/);
    invalid(`${two}\n{"expect": {"consistent": [null, "B1"]}}\n`, 2, /null is allowed only in cow/);
    invalid(`${two.replace('}', ', "features": "consistent"}')}\n`, 1, /features must be a list of strings/);
  });

  it('reads crash points and base64 data', () => {
    const trace = readTrace(
      `${header}\n{"op": "write", "region": 0, "data": {"base64": "AAAA"}, "crashAfterIo": 2, "mode": "power", "seed": 7, "torn": true}\n{"op": "recover"}\n`,
      't',
    );
    const step = trace.steps[0]!;
    assert.ok(step.kind === 'op');
    assert.deepEqual(step.crashAt, { afterIo: 2, mode: 'power', seed: 7, torn: true });
    assert.deepEqual(step.data, { base64: 'AAAA' });
  });

  it('rejects, with the line number, before anything runs', () => {
    invalid('', 1, /no header/);
    invalid('{"op": "write"}', 1, /first record must be the header/);
    invalid('{"trace": "cowmap", "version": 2, "regions": 4, "regionSize": 512}', 1, /version 2 is newer/);
    invalid('{"trace": "cowmap", "version": 1, "regions": 4, "regionSize": 500}', 1, /multiple of 512/);
    invalid('{"trace": "cowmap", "version": 1, "regions": 2, "regionSize": 512, "names": ["A", "A"]}', 1, /distinct/);
    invalid(`${header}\n{not json`, 2, /not JSON/);
    invalid(`${header}\n[1, 2]`, 2, /JSON object/);
    invalid(`${header}\n\n{"op": "swap"}`, 3, /unknown op 'swap'/);
    invalid(`${header}\n{"op": "write", "region": "Z", "data": "x"}`, 2, /unknown region name 'Z'/);
    invalid(`${header}\n{"op": "write", "region": 1.5, "data": "x"}`, 2, /not an integer/);
    invalid(`${header}\n{"op": "write", "region": 0}`, 2, /data must be/);
    invalid(`${header}\n{"op": "write", "region": 0, "data": "${'x'.repeat(513)}"}`, 2, /longer than regionSize/);
    invalid(`${header}\n{"op": "write", "region": 0, "data": {"base64": "!!"}}`, 2, /not valid base64/);
    invalid(`${header}\n{"op": "startCycle", "expectError": "E_NOPE"}`, 2, /expectError must be one of/);
    invalid(`${header}\n{"op": "startCycle", "region": 1}`, 2, /takes no region/);
    invalid(`${header}\n{"expect": {"secondry": []}}`, 2, /unknown expectation 'secondry'/);
    invalid(`${header}\n{"expect": {"next": "10"}}`, 2, /bit string of 4/);
    invalid(`${header}\n{"expect": {"primary": [null, "A", "B", "C"]}}`, 2, /null is allowed only in cow/);
    invalid(`${header}\n{"op": "crash"}\n{"op": "startCycle"}`, 3, /expectError.*E_PHASE/);
    invalid(`${header}\n{"op": "startCycle", "crashAfterIo": -1}`, 2, /non-negative/);
    invalid(`${header}\n{"op": "crash"}\n{"op": "recover", "crashAfterIo": 1}`, 3, /cannot go with recover/);
    invalid(
      `${header}\n{"op": "startCycle", "crashAfterIo": 1}\n{"expect": {"phase": "idle"}}`,
      2,
      /must be followed by recover/,
    );
    invalid(
      `${header}\n{"op": "startCycle", "crashAfterIo": 1, "mode": "process", "torn": true}`,
      2,
      /torn needs mode/,
    );
  });
});
