// The staleness rule of every connect (impl/remote/farProgress.ts), case by case.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ControlState, DecodedControl } from './controlBlock.ts';
import { type FarProgress, judgeFar } from './farProgress.ts';

const url = 'nbd://far/x';

function far(cycle: number, state: ControlState, batch = 0): DecodedControl {
  return {
    kind: 'block',
    block: { volumeId: new Uint8Array(16), regions: 4, regionSize: 4096, cycle, state, batch, swapTimeMs: 0 },
  };
}

const idleAt3: FarProgress = { lastCompleted: 3, running: null, confirmedBatches: 0 };
const running4 = (confirmedBatches: number): FarProgress => ({ lastCompleted: 3, running: 4, confirmedBatches });

describe('judgeFar', () => {
  const cases: [string, DecodedControl, FarProgress, 'current' | 'lostSent' | RegExp][] = [
    ['idle, the far side at the same completed cycle', far(3, 'complete'), idleAt3, 'current'],
    ['idle, the far side lost the completion of the last cycle', far(3, 'sending', 5), idleAt3, /lost completed/],
    ['idle, the far side an older cycle', far(2, 'complete'), idleAt3, /lost completed/],
    ['idle, the far side ahead', far(4, 'sending'), idleAt3, /ahead of this volume/],
    ['running, nothing confirmed yet, the far side at the last completed', far(3, 'complete'), running4(0), 'current'],
    [
      'running, the completion already on the far side (a crash before the durable step)',
      far(4, 'complete', 2),
      running4(0),
      'current',
    ],
    ['running, two batches confirmed, the far side holds both', far(4, 'sending', 2), running4(2), 'current'],
    ['running, two batches confirmed, the far side holds one', far(4, 'sending', 1), running4(2), 'lostSent'],
    [
      'running, a batch confirmed, the far side back at the last completed',
      far(3, 'complete'),
      running4(1),
      'lostSent',
    ],
    ['running, the far side lost the last completed cycle too', far(3, 'sending'), running4(1), /lost completed/],
    ['running, the far side ahead', far(5, 'sending'), running4(0), /ahead of this volume/],
    ['an empty control region (refused by the identity check before)', { kind: 'empty' }, idleAt3, 'current'],
  ];
  for (const [what, decoded, progress, expected] of cases) {
    it(what, () => {
      if (expected instanceof RegExp) {
        assert.throws(
          () => judgeFar(decoded, progress, url),
          (error: unknown) => {
            return (
              error instanceof Error &&
              (error as { code?: string }).code === 'E_CORRUPT' &&
              expected.test(error.message)
            );
          },
        );
      } else assert.equal(judgeFar(decoded, progress, url), expected);
    });
  }
});
