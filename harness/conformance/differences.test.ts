// A failure's expected / observed table stays readable on a large volume: the
// differing regions one by one, not a thousand labels in a row.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initialState } from '../../model/rules.ts';
import { Oracle } from '../oracle/oracle.ts';
import type { SutState } from '../sut/systemUnderTest.ts';
import { ContentBook } from '../trace/content.ts';

function stateOf(
  book: ContentBook,
  regions: number,
  change: (state: { secondary: string[]; next: string[] }) => void,
): SutState {
  const zero = book.zero;
  const secondary = Array<string>(regions).fill(zero);
  const next = Array<string>(regions).fill('0');
  change({ secondary, next });
  return {
    phase: 'idle',
    current: '0'.repeat(regions),
    next: next.join(''),
    cow: '0'.repeat(regions),
    primary: Array<string>(regions).fill(zero),
    secondary,
    cowData: Array<null>(regions).fill(null),
  };
}

describe('the differences of a failure', () => {
  it('name each differing region of a large volume, the first eight of them', () => {
    const book = new ContentBook(512);
    const regions = 65;
    const oracle = new Oracle({ regions, regionSize: 512 }, book, null);
    const other = book.addLabel('B1');
    const model = initialState({ regions, regionSize: 512 }, book.zero);
    const rows = oracle.differences(
      model,
      stateOf(book, regions, (state) => {
        state.secondary[8] = other;
        state.next[64] = '1';
      }),
    );
    assert.deepEqual(
      rows.map((row) => row.field),
      ['secondary[8]', 'next[64]'],
    );
    assert.equal(rows[0]!.observed, 'B1');
    assert.deepEqual([rows[1]!.expected, rows[1]!.observed], ['0', '1']);
    const many = oracle.differences(
      model,
      stateOf(book, regions, (state) => state.next.fill('1')),
    );
    assert.equal(many.length, 9);
    assert.match(many[8]!.observed, /and 57 more regions differ/);
  });

  it("show a small volume's differing field whole", () => {
    const book = new ContentBook(512);
    const oracle = new Oracle({ regions: 3, regionSize: 512 }, book, null);
    const model = initialState({ regions: 3, regionSize: 512 }, book.zero);
    const rows = oracle.differences(
      model,
      stateOf(book, 3, (state) => (state.next[1] = '1')),
    );
    assert.deepEqual(rows, [{ field: 'next', expected: '000', observed: '010' }]);
  });
});
