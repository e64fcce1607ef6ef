// The crash exploration of the receiver's store (receiverCrashes.ts): the store
// passes it, the histories hold what they claim to, and planted bugs of its durable
// order are caught. Random: the seed is printed, and COWMAP_RECEIVER_CRASH_SEED
// replays from it (history i has seed + i; a failure names the history's own seed).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ReceiverStore } from '../../impl/receive/receiverStore.ts';
import { applyJournal, compactJournal } from '../../impl/receive/receiverApply.ts';
import { ReceiverJournal } from '../../impl/receive/receiverJournal.ts';
import type { ControlBlock } from '../../impl/remote/controlBlock.ts';
import { atLevel } from '../testLevel.ts';
import {
  describeReceiverFailures,
  exploreReceiverCrashes,
  formatReceiverCounts,
  receiverFaults,
  type ReceiverStoreClass,
} from './receiverCrashes.ts';
import { makeReceiverHistory } from './receiverHistory.ts';

const seedVariable = 'COWMAP_RECEIVER_CRASH_SEED';
const seed = Number(process.env[seedVariable] ?? 20261130);
/** About 3 s at the quick level on a quiet machine (make test), about a minute at the full one (make verify). */
const historyCount = atLevel(2, 40);
/** A planted bug has this many histories to be caught in. */
const plantedHistoryCount = atLevel(20, 60);

/** Planted: the journal goes to the image before the commit record is durable. */
class ApplyBeforeCommit extends ReceiverStore {
  protected override commit(journal: ReceiverJournal, block: ControlBlock): void {
    journal.sync();
    applyJournal(journal, this.image, false);
    this.image.sync();
    super.commit(journal, block);
  }
}

/** Planted: flush returns without syncing the journal. */
class FlushWithoutSync extends ReceiverStore {
  override flush(): void {}
}

/** Planted: recovery drops an uncommitted journal (as if a restart ended the cycle). */
class DropsUncommittedJournal extends ReceiverStore {
  protected override recover(): void {
    super.recover();
    const journal = this.state.state.journal;
    if (this.journal === null || this.readOnly) return;
    const epoch = journal.epoch + 1;
    this.state.update({ journal: { ...journal, epoch } });
    this.journal = ReceiverJournal.restart(this.journal.file, epoch);
  }
}

/** Planted: the commit does not sync the journal first (the commit record may outlive the records it names). */
class CommitWithoutJournalSync extends ReceiverStore {
  protected override commit(journal: ReceiverJournal, block: ControlBlock): void {
    const sync = journal.sync;
    journal.sync = () => {};
    try {
      super.commit(journal, block);
    } finally {
      journal.sync = sync;
    }
  }
}

/** Planted: compaction switches to the new journal before syncing it. */
class SwitchBeforeCompactedSync extends ReceiverStore {
  protected override compact(): void {
    const current = this.state.state.journal;
    const other = current.file === 0 ? 1 : 0;
    const epoch = current.epoch + 1;
    this.journal = compactJournal(this.journal!, this.journalFiles[other], epoch);
    this.state.update({ journal: { ...current, epoch, file: other } });
  }
}

describe('the receiver\'s store survives a crash after every durable call (docs/format.md, "The receiver\'s files")', () => {
  test(`${historyCount} seeded histories, crashed in every fault mode and inside recovery`, () => {
    console.log(`receiver-crashes seed: ${seed} (histories ${historyCount}; set ${seedVariable} to replay)`);
    const result = exploreReceiverCrashes({ seed, historyCount });
    for (const line of formatReceiverCounts(result)) console.log(line);
    assert.equal(result.failures.length, 0, describeReceiverFailures(result.failures));
    assert.equal(result.histories, historyCount);
    assert.ok(result.crashPoints >= historyCount * 20, `only ${result.crashPoints} crash points`);
    for (const fault of receiverFaults) assert.ok((result.outcomes.get(fault) ?? 0) >= result.crashPoints, fault);
  });

  test('the histories hold what the exploration claims to crash inside', () => {
    const seen = new Map<string, number>();
    // The generator alone is cheap: 40 histories whatever the level, so that every kind shows up.
    for (let index = 0; index < 40; index++) {
      const history = makeReceiverHistory(seed + index);
      let open: number | null = null;
      let journalBytes = 0;
      for (const step of history.steps) {
        // The journal's records as the store appends them (48-byte headers): past the bound, a compaction.
        journalBytes += 48 + (step.kind === 'write' || step.kind === 'control' ? step.bytes.length : 0);
        if (step.kind === 'control' && step.state === 'sending' && step.cycle !== open) journalBytes = 0;
        if (history.journalBytesMax !== undefined && journalBytes > history.journalBytesMax) {
          seen.set('compaction', (seen.get('compaction') ?? 0) + 1);
          journalBytes = history.exportSize;
        }
        let what: string = step.kind;
        if (step.kind === 'control') {
          what = `${step.state}${step.state === 'sending' && step.cycle === open ? ' again' : ''}`;
          if (step.state === 'sending' && open !== null && step.cycle !== open)
            what = 'sending after an abandoned cycle';
          open = step.state === 'sending' ? step.cycle : null;
        } else if (step.kind === 'write')
          what = step.bytes.length === history.identity.regionSize ? 'whole region' : 'byte range';
        seen.set(what, (seen.get(what) ?? 0) + 1);
      }
    }
    console.log(`receiver histories hold: ${[...seen].map(([what, count]) => `${what} ${count}`).join(', ')}`);
    for (const what of [
      'sending',
      'sending again',
      'complete',
      'whole region',
      'byte range',
      'zeroes',
      'flush',
      'reopen',
    ])
      assert.ok((seen.get(what) ?? 0) > 0, `no history holds: ${what}`);
  });
});

describe("planted bugs of the receiver's durable order are caught", () => {
  const planted: [string, ReceiverStoreClass][] = [
    ['the journal applied before the commit record is durable', ApplyBeforeCommit],
    ['flush does not sync the journal', FlushWithoutSync],
    ['recovery drops an uncommitted journal', DropsUncommittedJournal],
    ['the commit does not sync the journal first', CommitWithoutJournalSync],
    ['compaction switches journals before the new one is synced', SwitchBeforeCompactedSync],
  ];
  for (const [name, storeClass] of planted) {
    test(name, () => {
      const result = exploreReceiverCrashes({ seed, historyCount: plantedHistoryCount, storeClass, failuresMax: 1 });
      assert.equal(result.failures.length, 1, `not caught in ${result.histories} histories from seed ${seed}`);
      console.log(`${name}: caught in history ${result.histories}; ${describeReceiverFailures(result.failures)}`);
    });
  }
});
