// The verdict rests on what the protocol defines: a rejection's wording is a
// warning (a failure only when strict), an empty message always fails.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageWarnings } from '../oracle/oracle.ts';
import { ReferenceSut } from '../sut/referenceSut.ts';
import { replayTrace } from '../replay.ts';
import type { SutOp, SutReply } from '../sut/systemUnderTest.ts';
import { readTrace } from '../trace/reader.ts';

const trace = readTrace(
  '{"trace": "cowmap", "version": 1, "regions": 2, "regionSize": 512, "names": ["A", "B"], "title": "t"}\n' +
    '{"op": "transfer", "region": 1, "expectError": "E_PHASE"}\n' +
    '{"op": "completeCycle", "expectError": "E_PHASE"}\n',
  'messages.jsonl',
);

class WordedSut extends ReferenceSut {
  constructor(private readonly word: (reply: Extract<SutReply, { ok: false }>) => string) {
    super();
  }

  override async apply(op: SutOp): Promise<SutReply> {
    const reply = await super.apply(op);
    return reply.ok ? reply : { ...reply, message: this.word(reply) };
  }
}

describe('rejection messages', () => {
  it('worded its own way: a warning, counted with examples, and the trace passes', async () => {
    const warnings = new MessageWarnings();
    const result = await replayTrace(trace, new WordedSut(() => 'a cycle is not running'), {
      messages: { strict: false, warnings },
    });
    assert.equal(result.failure, null);
    assert.equal(warnings.count, 2);
    assert.match(
      warnings.examples[0]!.missing.join(', '),
      /the operation \(transfer\), the region \(1\), the phase \(idle\)/,
    );
  });

  it('worded its own way under --strict-messages: a failure', async () => {
    const result = await replayTrace(trace, new WordedSut(() => 'a cycle is not running'), {
      messages: { strict: true },
    });
    assert.match(result.failure?.message ?? '', /does not name the operation \(transfer\)/);
  });

  it('empty: a failure, strict or not', async () => {
    const result = await replayTrace(trace, new WordedSut(() => '  '), { messages: { strict: false } });
    assert.match(result.failure?.message ?? '', /has no message/);
  });

  it("the reference implementation's messages name all three", async () => {
    const warnings = new MessageWarnings();
    assert.equal(
      (await replayTrace(trace, new ReferenceSut(), { messages: { strict: false, warnings } })).failure,
      null,
    );
    assert.equal(warnings.count, 0);
  });
});
