// `cowmap crashes` (bin/commands/crashes.ts) over the exploration: the summary
// table and exit 0 on the reference, --quick, exit 1 with the saved trace on a
// mutant, exit 2 on bad usage.

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { crashesMain } from '../../bin/commands/crashes.ts';
import { atLevel } from '../testLevel.ts';
import { freshFolder } from './testFolders.ts';

describe('cowmap crashes', () => {
  function capture() {
    const output = { out: '', err: '' };
    const out = (text: string): void => {
      output.out += text;
    };
    const err = (text: string): void => {
      output.err += text;
    };
    return { output, streams: { out, err, progress: false } };
  }

  it('prints the summary table and exits 0 on the reference implementation', async () => {
    const { output, streams } = capture();
    const status = await crashesMain(
      [
        '--length',
        // Operations of length 1 at the quick level (make test): the same table, in a fraction of the time.
        atLevel('1', '2'),
        '--regions',
        '2',
        '--values',
        '1',
        '--no-create',
        '--rot-states',
        '1',
        '--out-dir',
        freshFolder(),
      ],
      streams,
    );
    assert.equal(status, 0, output.out + output.err);
    for (const row of [
      'sequences covered',
      'distinct prefixes',
      'crash points',
      'exhausted / sampled',
      'crash states checked',
      'seconds',
      'crash states/s',
    ]) {
      assert.match(output.out, new RegExp(row.replace('/', '\\/')));
    }
    assert.match(output.out, /every crash state recovered to a state the model allows/);
    assert.match(
      output.out,
      /^crash states per kind: process \d+, power \d+, torn \d+, rot \d+, inside create 0, inside recovery \d+, inside scrub \d+; \d+ in all, in [\d.]+ s$/m,
    );
  });

  it('--quick runs the small and the wide geometry, each with create, recovery, rot and scrub', async () => {
    const { output, streams } = capture();
    const status = await crashesMain(['--quick', '--out-dir', freshFolder()], streams);
    assert.equal(status, 0, output.out + output.err);
    assert.match(output.out, /crash exploration: length 2, regions 2,/);
    assert.match(output.out, /crash exploration: length 2, regions 17 \(written: 0, 16\),/);
    const totals =
      /^crash states per kind: process (\d+), power \d+, torn (\d+), rot (\d+), inside create (\d+), inside recovery (\d+), inside scrub \d+;/m.exec(
        output.out,
      );
    assert.ok(totals !== null, output.out);
    for (const count of totals.slice(1)) assert.ok(Number(count) > 0, output.out);
  });

  it('exits 1 on a mutant, saving and printing the trace', async () => {
    const { output, streams } = capture();
    const dir = freshFolder();
    const status = await crashesMain(
      [
        '--length',
        '2',
        '--values',
        '1',
        '--mutant',
        'next-bit-after-data',
        '--no-create',
        '--no-recovery',
        '--no-rot',
        '--out-dir',
        dir,
      ],
      streams,
    );
    assert.equal(status, 1, output.out + output.err);
    assert.match(output.out, /^FAIL write A A1 crashed after io \d+ \(process\)/m);
    assert.match(
      output.out,
      /trace saved to .*crash-mutant-next-bit-after-data-write-io\d+-process-[0-9a-f]{8}\.jsonl/,
    );
    assert.match(output.out, /\{"trace":"cowmap","version":1/);
    assert.equal(readdirSync(dir).length, 1);
    assert.match(output.out, /^replay it: cowmap replay --mutant next-bit-after-data .*\.jsonl$/m);
  });

  it('exits 2 on bad usage', async () => {
    for (const args of [
      ['--modes', 'process,flood'],
      ['--mutant', 'no-such-mutant'],
      ['--length', '99'],
      ['--region-size', '1000'],
      ['--regions', '17'],
      ['--regions', '17', '--active', '0,17'],
    ]) {
      const { output, streams } = capture();
      const original = process.stderr.write;
      process.stderr.write = ((text: string) => {
        output.err += text;
        return true;
      }) as typeof process.stderr.write;
      try {
        assert.equal(await crashesMain(args, streams), 2, args.join(' '));
      } finally {
        process.stderr.write = original;
      }
      assert.match(output.err, /^cowmap crashes: .+\nusage: cowmap crashes /m, args.join(' '));
    }
  });
});
