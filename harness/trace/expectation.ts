// Checks a trace's `expect` record against a model state: any subset of phase,
// primary, secondary, cow, consistent (labels; null for an empty COW slot; a list
// for a choice of allowed contents), current and next (bit strings, region 0 first).
// The implementation's state is the model's after every step (the oracle compares
// them, D included when it reports one), so the model state is what is checked.

import type { Content, ModelState } from '../../model/types.ts';
import type { Difference } from '../oracle/oracle.ts';
import { bits } from '../../model/bits.ts';
import type { ContentBook } from './content.ts';
import type { Expectation, ExpectedContent, TraceData } from './trace.ts';

export function contentOf(data: TraceData, book: ContentBook): Content {
  return 'label' in data ? book.addLabel(data.label) : book.addBytes(Buffer.from(data.base64, 'base64'));
}

function allowed(expected: ExpectedContent, book: ContentBook): (Content | null)[] {
  if (expected === null) return [null];
  if (Array.isArray(expected))
    return (expected as readonly (TraceData | null)[]).map((item) => (item === null ? null : contentOf(item, book)));
  return [contentOf(expected as TraceData, book)];
}

function showExpected(expected: ExpectedContent, book: ContentBook): string {
  const options = allowed(expected, book).map((content) => book.show(content));
  return options.length === 1 ? options[0]! : `{${options.join('|')}}`;
}

export function checkExpectation(state: ModelState, expect: Expectation, book: ContentBook): Difference[] {
  const differences: Difference[] = [];
  if (expect.phase !== undefined && expect.phase !== state.phase) {
    differences.push({ field: 'phase', expected: expect.phase, observed: state.phase });
  }
  for (const field of ['primary', 'secondary', 'cow', 'consistent'] as const) {
    const list = expect[field];
    if (list === undefined) continue;
    const actual = state[field];
    const matches = list.every((expected, region) => allowed(expected, book).includes(actual[region] ?? null));
    if (!matches) {
      differences.push({
        field,
        expected: list.map((expected) => showExpected(expected, book)).join(' '),
        observed: actual.map((content) => book.show(content)).join(' '),
      });
    }
  }
  for (const field of ['current', 'next'] as const) {
    const expected = expect[field];
    if (expected !== undefined && expected !== bits(state[field])) {
      differences.push({ field, expected, observed: bits(state[field]) });
    }
  }
  return differences;
}
