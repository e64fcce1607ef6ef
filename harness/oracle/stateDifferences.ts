// The model's and an implementation's states as a reader sees them: the state an
// implementation reports as the model sees it (observedOf), one-line descriptions,
// and the fields where the two differ (docs/protocol.md section 6).

import type { ObservedState } from '../../model/crashOutcomes.ts';
import type { ModelState } from '../../model/types.ts';
import type { SutState } from '../sut/systemUnderTest.ts';
import type { ContentBook } from '../trace/content.ts';
import { bits } from '../../model/bits.ts';
import { OracleFailure } from './oracleFailure.ts';
import type { Difference } from './oracleFailure.ts';

function parseBits(text: string): boolean[] {
  return [...text].map((bit) => bit === '1');
}

export function observedOf(state: SutState): ObservedState {
  for (let region = 0; region < state.cowData.length; region++) {
    // docs/protocol.md section 6: the validity of W and its content are one fact, reported twice.
    if ((state.cow[region] === '1') !== (state.cowData[region] !== null)) {
      throw new OracleFailure(
        'divergence',
        `the implementation reports cow bit ${state.cow[region]} for region ${region} with cowData ${state.cowData[region] === null ? 'null' : 'present'}`,
      );
    }
  }
  return {
    phase: state.phase,
    current: parseBits(state.current),
    next: parseBits(state.next),
    cow: state.cowData.map((digest, region) => (state.cow[region] === '1' ? digest : null)),
    primary: state.primary,
    secondary: state.secondary,
    consistent: state.consistent,
  };
}

/** Shows states and their differences with the labels of a run's content book. */
export class StateDescriber {
  constructor(readonly book: ContentBook) {}

  private show(list: readonly (string | null)[]): string {
    return list.map((content) => this.book.show(content)).join(' ');
  }

  /** The model's state; `withConsistent` adds D (to compare with an implementation that reports it). */
  describeState(state: ModelState, withConsistent = false): string {
    const contents = `P=${this.show(state.primary)} S=${this.show(state.secondary)}`;
    const consistent = withConsistent ? ` D=${this.show(state.consistent)}` : '';
    return `${state.phase} ${contents} C=${bits(state.current)} X=${bits(state.next)} W=${this.show(state.cow)}${consistent}`;
  }

  describeObserved(state: SutState): string {
    const observed = observedOf(state);
    const contents = `P=${this.show(observed.primary)} S=${this.show(observed.secondary)}`;
    const consistent = observed.consistent === undefined ? '' : ` D=${this.show(observed.consistent)}`;
    return `${state.phase} ${contents} C=${state.current} X=${state.next} W=${this.show(observed.cow)}${consistent}`;
  }

  /**
   * The fields where the implementation's state differs from the model's. A
   * volume of a few regions shows each differing field whole; a larger one shows
   * the differing regions one by one (`secondary[8]`, `next[64]`), the first
   * `regionRowsMax` of them, so that a table stays readable at 1,000 regions.
   */
  differences(model: ModelState, state: SutState): Difference[] {
    const observed = observedOf(state);
    const phase: Difference[] =
      model.phase === observed.phase ? [] : [{ field: 'phase', expected: model.phase, observed: observed.phase }];
    // Compared by content (digests), shown by label: two contents may share a
    // shortened label, and a label may read like an empty slot.
    const fields: [string, readonly (string | null)[], readonly (string | null)[], 'content' | 'bit'][] = [
      ['primary', model.primary, observed.primary, 'content'],
      ['secondary', model.secondary, observed.secondary, 'content'],
      ['current', [...bits(model.current)], [...state.current], 'bit'],
      ['next', [...bits(model.next)], [...state.next], 'bit'],
      ['cow', model.cow, observed.cow, 'content'],
      // D only from an implementation that keeps one (feature `consistent`, docs/protocol.md section 10).
      ...(observed.consistent === undefined
        ? []
        : [
            ['consistent', model.consistent, observed.consistent, 'content'] as [
              string,
              readonly string[],
              readonly string[],
              'content',
            ],
          ]),
    ];
    const showContent = (expected: string | null, seen: string | null): [string, string] => {
      const [shownExpected, shownSeen] = [this.book.show(expected), this.book.show(seen)];
      return [shownExpected, shownExpected === shownSeen ? `${shownSeen} (other bytes, same label)` : shownSeen];
    };
    const rows: Difference[] = [];
    for (const [field, expected, seen, kind] of fields) {
      const count = Math.max(expected.length, seen.length);
      const differing = [...Array(count).keys()].filter((region) => expected[region] !== seen[region]);
      if (differing.length === 0) continue;
      if (expected.length !== seen.length || count <= StateDescriber.wholeFieldRegionsMax) {
        const whole = kind === 'bit' ? [expected.join(''), seen.join('')] : [this.show(expected), this.show(seen)];
        rows.push({
          field,
          expected: whole[0]!,
          observed: whole[0] === whole[1] ? `${whole[1]} (other bytes, same label)` : whole[1]!,
        });
        continue;
      }
      for (const region of differing.slice(0, StateDescriber.regionRowsMax)) {
        const [shownExpected, shownSeen] =
          kind === 'bit'
            ? [expected[region]!, seen[region]!]
            : showContent(expected[region] ?? null, seen[region] ?? null);
        rows.push({ field: `${field}[${region}]`, expected: shownExpected, observed: shownSeen });
      }
      if (differing.length > StateDescriber.regionRowsMax)
        rows.push({
          field: `${field}[...]`,
          expected: '',
          observed: `and ${differing.length - StateDescriber.regionRowsMax} more regions differ`,
        });
    }
    return [...phase, ...rows];
  }

  /** Up to this many regions, a differing field is shown whole. */
  static readonly wholeFieldRegionsMax = 8;
  /** Beyond it, this many differing regions of a field are shown one by one. */
  static readonly regionRowsMax = 8;
}
