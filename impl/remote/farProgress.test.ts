// The staleness rule of every connect (impl/remote/farProgress.ts), case by case.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ControlState, DecodedControl } from './controlBlock.ts';
import { type FarProgress, judgeFar } from './farProgress.ts';

const url = 'nbd://far/x';

const other = new Uint8Array(8).fill(9);
const mine = new Uint8Array(8).fill(1);

function far(cycle: number, state: ControlState, batch = 0, writer = other, seq = 0): DecodedControl {
  const volumeId = new Uint8Array(16);
  return {
    kind: 'block',
    block: { volumeId, regions: 4, regionSize: 4096, cycle, state, batch, swapTimeMs: 0, writer, seq },
  };
}

/** This open's block with `seq`. */
const ours = (cycle: number, state: ControlState, seq: number): DecodedControl => far(cycle, state, 0, mine, seq);

const opened = { writer: mine, floor: 0, completedFloor: null };
const idleAt3: FarProgress = { ...opened, lastCompleted: 3, running: null, confirmedBatches: 0 };
const running4 = (confirmedBatches: number): FarProgress => ({
  ...opened,
  lastCompleted: 3,
  running: 4,
  confirmedBatches,
});
/** This open completed 3 (its last batch confirmed at seq 10, the completion at seq 11) and confirmed batches of 4 up to seq 20. */
const running4After3 = (confirmedBatches: number): FarProgress => ({
  writer: mine,
  lastCompleted: 3,
  running: 4,
  confirmedBatches,
  floor: confirmedBatches > 0 ? 20 : 11,
  completedFloor: 10,
});

describe('judgeFar', () => {
  const cases: [string, DecodedControl, FarProgress, 'current' | 'lostSent' | 'verifyCompleted' | RegExp][] = [
    ['this open, at the floor', ours(4, 'sending', 20), running4After3(2), 'current'],
    ['this open, past the floor (a block not yet flushed)', ours(4, 'sending', 21), running4After3(2), 'current'],
    ['this open, below the floor: rewound within the cycle', ours(4, 'sending', 15), running4After3(2), 'lostSent'],
    ['this open, below the floor, nothing of 4 confirmed', ours(4, 'sending', 12), running4After3(0), 'current'],
    ["this open, 3's completion lost but its data kept", ours(3, 'sending', 10), running4After3(0), 'current'],
    ["this open, 3's completion lost, batches of 4 confirmed", ours(3, 'sending', 10), running4After3(1), 'lostSent'],
    ['this open, a block of 3 older than its last batch', ours(3, 'sending', 7), running4After3(1), 'verifyCompleted'],
    ['this open, a block of a cycle before 3', ours(2, 'complete', 5), running4After3(0), /lost completed/],
    ['another open, batches of 4 confirmed by this one', far(4, 'sending', 9), running4(1), 'lostSent'],
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
    ['running, two batches confirmed, the far side holds both', ours(4, 'sending', 0), running4(2), 'current'],
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
