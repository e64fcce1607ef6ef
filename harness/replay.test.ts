import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { idleTransferNotCurrentStatechart } from '../model/plantedStatecharts.ts';
import { formatFailure, replayTrace } from './replay.ts';
import type { SutOp } from './sut/systemUnderTest.ts';
import { readTrace } from './trace/reader.ts';

const fig4 = readFileSync(new URL('../traces/fig4.jsonl', import.meta.url), 'utf8');
const header = '{"trace": "cowmap", "version": 1, "regions": 2, "regionSize": 512}';

describe('model-only replay', () => {
  it('passes the FIG. 4 trace', async () => {
    const result = await replayTrace(readTrace(fig4, 'fig4.jsonl'), null);
    assert.equal(result.failure, null);
    assert.ok(result.stats.steps >= 30);
    assert.ok(result.covered.has('replicating:write[firstWriteThisCycle]'));
  });

  it('names the line, the step and both states when an expectation is changed', async () => {
    const changed = fig4.replace(
      '"secondary": ["A1", "B1", "C0", "D1"]}, "at": "T1"',
      '"secondary": ["A1", "B2", "C0", "D1"]}, "at": "T1"',
    );
    assert.notEqual(changed, fig4);
    const result = await replayTrace(readTrace(changed, 'fig4.jsonl'), null);
    assert.ok(result.failure !== null);
    assert.equal(result.failure.line, 21);
    assert.deepEqual(result.failure.differences, [
      { field: 'secondary', expected: 'A1 B2 C0 D1', observed: 'A1 B1 C0 D1' },
    ]);
    const text = formatFailure(result.failure);
    assert.match(text, /^fig4\.jsonl:21: expect at T1/);
    assert.match(text, /secondary\s+A1 B2 C0 D1\s+A1 B1 C0 D1/);
  });

  it('fails an expectError the model does not give, and an op the model rejects', async () => {
    const wrongCode = await replayTrace(
      readTrace(`${header}\n{"op": "transfer", "region": 0, "expectError": "E_NOT_CURRENT"}\n`, 't'),
      null,
    );
    assert.match(wrongCode.failure?.message ?? '', /expected E_NOT_CURRENT, the model says E_PHASE/);
    const rejected = await replayTrace(readTrace(`${header}\n{"op": "completeCycle"}\n`, 't'), null);
    assert.match(rejected.failure?.message ?? '', /rejects it with E_PHASE/);
  });

  it('follows every allowed outcome after a crash inside an operation', async () => {
    const text = [
      header,
      '{"op": "write", "region": "A", "data": "A1"}',
      '{"op": "startCycle"}',
      '{"op": "write", "region": "A", "data": "A2", "crashAfterIo": 1}',
      '{"op": "recover"}',
      '{"expect": {"phase": "replicating", "primary": [["A1", "A2"], ""], "cow": [[null, "A1"], null]}}',
      '{"op": "cycle", "expectError": "E_PHASE"}',
      '{"op": "transfer", "region": "A"}',
      '{"op": "completeCycle"}',
      '{"expect": {"secondary": ["A1", ""]}}',
    ].join('\n');
    const result = await replayTrace(readTrace(text, 't'), null);
    assert.equal(result.failure, null, result.failure === null ? '' : formatFailure(result.failure));
    assert.equal(result.branches, 5, 'five outcomes of a first write in a cycle');
    const tooStrict = text.replace('"primary": [["A1", "A2"], ""]', '"primary": ["A1", ""]');
    const failed = await replayTrace(readTrace(tooStrict, 't'), null);
    assert.match(failed.failure?.differences[0]?.observed ?? '', /^A2/);
  });

  it('checks that every op between crash and recover is rejected', async () => {
    const text = [
      header,
      '{"op": "crash"}',
      '{"op": "write", "region": 0, "data": "x", "expectError": "E_PHASE"}',
      '{"op": "recover"}',
      '{"op": "recover", "expectError": "E_PHASE"}',
      '',
    ].join('\n');
    const result = await replayTrace(readTrace(text, 't'), null);
    assert.equal(result.failure, null);
  });
});

describe('a broken model during replay', () => {
  it('is a formatted failure naming the line, not an uncaught error', async () => {
    const text = [
      header,
      '{"op": "write", "region": "A", "data": "A1"}',
      '{"op": "transfer", "region": "A", "expectError": "E_PHASE"}',
      '{"op": "startCycle"}',
      '',
    ].join('\n');
    const trace = readTrace(text, 'broken.jsonl');
    assert.equal((await replayTrace(trace, null)).failure, null);
    const result = await replayTrace(trace, null, { statechart: idleTransferNotCurrentStatechart() });
    assert.ok(result.failure !== null);
    assert.equal(result.failure.line, 3);
    assert.equal(result.failure.observedBy, 'model');
    assert.match(result.failure.message, /the model itself is broken: .*E_NOT_CURRENT, the rules say E_PHASE/);
    assert.match(formatFailure(result.failure), /^broken\.jsonl:3: transfer/);
  });
});

describe('replay against the implementation', () => {
  it('compares content, not labels: two long labels with the same start still differ', async () => {
    const { ReferenceSut } = await import('./sut/referenceSut.ts');
    const { mutants } = await import('./mutants/mutants.ts');
    const file = new URL('../traces/regressions/long-labels-compared-by-content.jsonl', import.meta.url);
    const trace = readTrace(readFileSync(file, 'utf8'), 'long-labels.jsonl');
    const broken = await replayTrace(
      trace,
      new ReferenceSut({ volumeClass: mutants['transfer-sends-primary']!.volumeClass }),
    );
    assert.ok(broken.failure !== null);
    assert.match(broken.failure.differences[0]?.observed ?? '', /other bytes, same label/);
    assert.equal((await replayTrace(trace, new ReferenceSut())).failure, null);
  });
});

describe('rejection messages', () => {
  it('must name the operation, the region and the phase (docs/protocol.md section 4)', async () => {
    const { ReferenceSut } = await import('./sut/referenceSut.ts');
    const text = `${header}\n{"op": "transfer", "region": 1, "expectError": "E_PHASE"}\n`;
    assert.equal((await replayTrace(readTrace(text, 't'), new ReferenceSut())).failure, null);
    class TerseSut extends ReferenceSut {
      override async apply(op: SutOp) {
        const reply = await super.apply(op);
        return reply.ok ? reply : { ...reply, message: 'no' };
      }
    }
    const terse = await replayTrace(readTrace(text, 't'), new TerseSut());
    assert.match(
      terse.failure?.message ?? '',
      /does not name the operation \(transfer\), the region \(1\), the phase \(idle\)/,
    );
  });
});

describe('traces of failures', () => {
  it('a scenario that failed on a crash step is saved with the recover docs/traces.md requires, and still fails there', async () => {
    const { scenarioTrace } = await import('./scenario.ts');
    const { ReferenceSut } = await import('./sut/referenceSut.ts');
    const { mutantNamed } = await import('./mutants/mutants.ts');
    // The write makes fewer than 99 I/O calls: it completes, then the crash follows.
    const records = [
      { op: 'startCycle' },
      { op: 'write', region: 'A', data: 'A1', crashAfterIo: 99, mode: 'process' },
    ] as never[];
    const text = scenarioTrace({ regions: 2, regionSize: 512 }, records, 'ends on a crash step', ['a test']);
    assert.match(text.trimEnd().split('\n').at(-1)!, /"op":"recover"/);
    const trace = readTrace(text, 'saved.jsonl');
    const broken = await replayTrace(
      trace,
      new ReferenceSut({ volumeClass: mutantNamed('no-next-bit-in-cycle').volumeClass, name: 'no-next-bit-in-cycle' }),
    );
    assert.ok(broken.failure !== null, 'the saved trace passes on the broken implementation');
    assert.match(formatFailure(broken.failure), /next/);
    const reference = await replayTrace(trace, new ReferenceSut());
    assert.equal(reference.failure, null, reference.failure === null ? '' : formatFailure(reference.failure));
  });
});

describe('a trace that needs the consistent image (its header says features: consistent)', () => {
  const file = new URL('../traces/consistent/fig4-consistent.jsonl', import.meta.url);
  const text = readFileSync(file, 'utf8');

  it("runs on volumes that keep one: the implementation's D is compared after every step", async () => {
    const { ReferenceSut } = await import('./sut/referenceSut.ts');
    const { ConsistentWithoutJournal } = await import('./adapter/consistentMutant.ts');
    const trace = readTrace(text, 'fig4-consistent.jsonl');
    assert.deepEqual(trace.header.features, ['consistent']);
    const reference = await replayTrace(trace, new ReferenceSut());
    assert.equal(reference.failure, null, reference.failure === null ? '' : formatFailure(reference.failure));
    // A D that takes each transfer at once differs from the model's before the cycle completes.
    const broken = await replayTrace(trace, new ReferenceSut({ volumeClass: ConsistentWithoutJournal }));
    assert.ok(broken.failure !== null, 'the trace passes on a consistent image without a journal');
    assert.equal(broken.failure.observedBy, 'implementation');
    assert.match(formatFailure(broken.failure), /consistent/);
  });

  it('without the feature in its header, the same steps do not ask for D', async () => {
    const { ReferenceSut } = await import('./sut/referenceSut.ts');
    const { ConsistentWithoutJournal } = await import('./adapter/consistentMutant.ts');
    const withoutFeature = text.replace(', "features": ["consistent"]', '');
    assert.notEqual(withoutFeature, text);
    const trace = readTrace(withoutFeature, 'fig4-plain.jsonl');
    const result = await replayTrace(trace, new ReferenceSut({ volumeClass: ConsistentWithoutJournal }));
    assert.equal(result.failure, null, result.failure === null ? '' : formatFailure(result.failure));
  });
});
