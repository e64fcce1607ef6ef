// traces/schema.json and the reader agree: every trace in traces/ is valid under
// both, and record by record, what the schema can judge, both reject alike.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { readTrace } from '../harness/trace/reader.ts';
import { TraceError } from '../harness/trace/traceError.ts';
import { traceFiles } from '../harness/trace/traceFiles.ts';

const schema = JSON.parse(readFileSync(new URL('./schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
const ajv = new Ajv2020({ allErrors: true, strict: false });
ajv.addSchema(schema);
const id = schema.$id as string;
const validHeader = ajv.getSchema(`${id}#/$defs/header`)!;
const validRecord = ajv.getSchema(`${id}#/$defs/record`)!;

const header = { trace: 'cowmap', version: 1, regions: 4, regionSize: 512 };

function readerAccepts(record: unknown): boolean {
  try {
    // A crash inside an op must be followed by recover: a rule across records, which the schema cannot state.
    readTrace(`${JSON.stringify(header)}\n${JSON.stringify(record)}\n{"op": "recover"}\n`, 'probe.jsonl');
    return true;
  } catch (error) {
    if (error instanceof TraceError) return false;
    throw error;
  }
}

describe('traces/schema.json', () => {
  it('accepts every trace in traces/, record by record', () => {
    const files = traceFiles(fileURLToPath(new URL('.', import.meta.url)));
    assert.ok(files.length > 30);
    for (const file of files) {
      const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
      assert.ok(validHeader(JSON.parse(lines[0]!)), `${file} header: ${ajv.errorsText(validHeader.errors)}`);
      for (const line of lines.slice(1)) assert.ok(validRecord(JSON.parse(line)), `${file}: ${line}: ${ajv.errorsText(validRecord.errors)}`);
    }
  });

  const records: unknown[] = [
    { op: 'write', region: 'A', data: 'A1' },
    { op: 'write', region: 2, data: { base64: 'AAAA' } },
    { op: 'write', region: 0, data: { base64: '!!' } },
    { op: 'write', region: 0 },
    { op: 'write', data: 'x' },
    { op: 'transfer', region: 'B' },
    { op: 'transfer', region: 1, data: 'x' },
    { op: 'startCycle' },
    { op: 'startCycle', region: 1 },
    { op: 'cycle', expectError: 'E_PHASE' },
    { op: 'swap' },
    { op: 'startCycle', expectError: 'E_NOPE' },
    { op: 'startCycle', crashAfterIo: 2 },
    { op: 'write', region: 0, data: 'x', crashAfterIo: 1, mode: 'power', seed: 3, torn: true },
    { op: 'write', region: 0, data: 'x', crashAfterIo: 1, mode: 'process', torn: true },
    { op: 'startCycle', crashAfterIo: -1 },
    { op: 'startCycle', crashAfterIo: 1, expectError: 'E_PHASE' },
    { op: 'recover', crashAfterIo: 1 },
    { op: 'cycle', crashAfterIo: 1 },
    { op: 'startCycle', mode: 'power' },
    { expect: { phase: 'idle', next: '0101' }, at: 'T1' },
    { expect: { cow: [null, 'B1', ['A1', null], ''] } },
    { expect: { primary: [null, '', '', ''] } },
    { expect: { secondry: [] } },
    { expect: { phase: 'busy' } },
    { expect: { next: '01x1' } },
    { expect: {}, op: 'startCycle' },
    { expect: { primary: [[], '', '', ''] } },
  ];
  for (const record of records) {
    it(`agrees with the reader on ${JSON.stringify(record)}`, () => {
      const bySchema = validRecord(record) === true;
      assert.equal(bySchema, readerAccepts(record), ajv.errorsText(validRecord.errors));
    });
  }

  it('agrees with the reader on headers', () => {
    const headers: unknown[] = [
      header,
      { ...header, names: ['W', 'X', 'Y', 'Z'], title: 't', seed: 3 },
      { ...header, version: 2 },
      { ...header, regionSize: 500 },
      { ...header, regions: 0 },
      { ...header, trace: 'other' },
      { ...header, names: ['A', 'A', 'B', 'C'] },
    ];
    for (const candidate of headers) {
      let readerOk = true;
      try {
        readTrace(`${JSON.stringify(candidate)}\n`, 'probe.jsonl');
      } catch (error) {
        if (!(error instanceof TraceError)) throw error;
        readerOk = false;
      }
      assert.equal(validHeader(candidate) === true, readerOk, JSON.stringify(candidate));
    }
  });
});
