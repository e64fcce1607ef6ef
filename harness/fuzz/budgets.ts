// The budgets of a fuzz run, as a fast-check plugin checked between runs (a run
// is never cut short): the search stops at the time budget (or after one run
// when replaying a path); shrinking a failure found in time has its own budget.
// The search also skips the sequences short of the history minimum.

import fc from 'fast-check';
import type { SequenceRun } from './command.ts';
import { shortOfHistory } from './command.ts';
import type { FuzzModel } from './model.ts';
import { fuzzDefaults } from './options.ts';
import type { FuzzOptions } from './options.ts';
import type { FuzzTally } from './tally.ts';

export type FuzzStop = 'time budget' | 'path replayed' | 'shrink budget';
type Sequence = [Iterable<fc.AsyncCommand<FuzzModel, SequenceRun>>];

export class FuzzBudgets {
  /** What ended the run early (null: it ran its runs). */
  stoppedBy: FuzzStop | null = null;
  private runsStarted = 0;
  private readonly shrinkBudgetMs: number;

  constructor(
    private readonly options: Pick<FuzzOptions, 'timeBudgetMs' | 'shrinkBudgetMs' | 'historyMin'>,
    private readonly replaying: boolean,
    private readonly tally: FuzzTally,
  ) {
    this.shrinkBudgetMs = options.shrinkBudgetMs ?? fuzzDefaults.shrinkBudgetMs;
  }

  readonly plugin: fc.Plugin<Sequence> = () => ({
    decorateRun: (nestedRun) => (value) => {
      const stop = this.stopBefore(value);
      if (stop === 'skip') return new fc.PreconditionFailure(false);
      if (stop !== null) {
        this.stoppedBy = stop;
        return new fc.PreconditionFailure(true);
      }
      this.runsStarted++;
      return nestedRun(value);
    },
  });

  /** Why the next run does not start ('skip': the sequence is short of the history), or null to run it. */
  private stopBefore(value: Sequence): FuzzStop | 'skip' | null {
    const { timeBudgetMs, historyMin } = this.options;
    const { failedAt, startedMs } = this.tally;
    const now = performance.now();
    if (failedAt === null && timeBudgetMs !== undefined && now - startedMs >= timeBudgetMs) return 'time budget';
    if (failedAt === null && this.replaying && this.runsStarted >= 1) return 'path replayed';
    if (failedAt !== null && now - failedAt >= this.shrinkBudgetMs) return 'shrink budget';
    // The search skips sequences short of the history (a path replay and shrinking take them as they are).
    if (failedAt === null && !this.replaying && historyMin !== undefined && shortOfHistory(value[0], historyMin))
      return 'skip';
    return null;
  }
}
