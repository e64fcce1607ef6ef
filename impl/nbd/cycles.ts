// The cycle runner of `cowmap serve`: startCycle (the swap), a transfer of every
// region of C in slices of `batchRegions` (one transferRegions call, so one sync
// of the secondary, per slice), completeCycle. The slices run in the server's one
// pump (batchScheduler.ts), interleaved fairly with client batches: a write during
// a cycle takes the copy-on-write path of the volume, which keeps the snapshot view
// the cycle sends (docs/protocol.md INV-SNAPSHOT). A request during a running cycle
// starts one more right after it. A volume opened in the middle of a cycle resumes
// it (`resumeInterrupted`). Only cycles that send something are logged.

import type { ReplicatedVolume } from '../replicatedVolume.ts';

export interface CycleReport {
  cycle: number;
  resumed: boolean;
  regions: number;
  bytes: number;
  seconds: number;
  /** The secondary's age right after this completion: now minus this cycle's swap (null for a resumed cycle). */
  lagSeconds: number | null;
}

export interface CycleOptions {
  readonly batchRegions: number;
  readonly log: (line: string) => void;
  /** Asks the pump to run `step` soon (a cycle began). */
  readonly wake: () => void;
  /** Called right after each swap (not on a resume), for tests: the primary is P@swap now. */
  readonly onSwap?: (cycle: number) => void;
  /** Called right after each completed cycle. */
  readonly onCycle?: (report: CycleReport) => void;
  /** Called at each cycle event (begin, completion, failure): the server rewrites its status file. */
  readonly onEvent?: () => void;
}

interface RunningCycle {
  cycle: number;
  resumed: boolean;
  regions: number[];
  next: number;
  /** Wall clock of the swap (null when resumed: the swap was before this process). */
  swapAt: Date | null;
  startedMs: number;
}

export class CycleRunner {
  private readonly volume: ReplicatedVolume;
  private readonly options: CycleOptions;
  private running: RunningCycle | null = null;
  private pending = false;
  private idleWaiters: (() => void)[] = [];
  /** Set once a cycle step failed: the volume handle is poisoned (E_IO) and cycles stop. */
  failure: string | null = null;
  completed = 0;
  /** Cycles completed that had nothing to send (not logged one by one). */
  completedEmpty = 0;
  lastCompletedCycle: number | null = null;
  /** The swap time of the last completed (not resumed) cycle: the secondary's point in time. */
  lastCompletedSwapAt: Date | null = null;
  lastCycleSeconds: number | null = null;

  constructor(volume: ReplicatedVolume, options: CycleOptions) {
    this.volume = volume;
    this.options = options;
  }

  get isRunning(): boolean {
    return this.running !== null;
  }

  /** Regions of the running cycle not sent yet (0 when none runs). */
  get regionsLeft(): number {
    return this.running === null ? 0 : this.running.regions.length - this.running.next;
  }

  /** Resolves once no cycle runs and none is pending. */
  whenIdle(): Promise<void> {
    if (this.running === null && !this.pending) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** A volume opened in the middle of a cycle: send every region of C again, then complete. */
  resumeInterrupted(): boolean {
    if (this.volume.phase !== 'replicating' || this.running !== null) return false;
    this.begin(true);
    return true;
  }

  /**
   * Forgets the running cycle without completing or failing it (the server stops
   * and the volume is about to close): the next open resumes it.
   */
  leave(): void {
    this.running = null;
    this.pending = false;
    this.notifyIdle();
  }

  /** Starts a cycle now, or right after the running one. */
  request(): void {
    if (this.failure !== null) return;
    if (this.running !== null) {
      this.pending = true;
      return;
    }
    this.begin(this.volume.phase === 'replicating');
  }

  private begin(resumed: boolean): void {
    try {
      if (!resumed) {
        this.volume.startCycle();
        this.options.onSwap?.(this.volume.cycle);
      }
      const regions = resumed ? this.volume.unsentRegions() : this.volume.currentRegions();
      const swapAt = resumed ? null : new Date();
      this.running = { cycle: this.volume.cycle, resumed, regions, next: 0, swapAt, startedMs: performance.now() };
      if (regions.length > 0 || resumed) {
        const what = resumed ? 'resuming an interrupted cycle' : 'swap';
        this.options.log(`cycle ${this.volume.cycle}: ${what}, ${regions.length} region(s) to send`);
      }
    } catch (error) {
      this.fail(error);
      return;
    }
    this.options.onEvent?.();
    this.options.wake();
  }

  /** One slice: a transferRegions call of up to `batchRegions` regions; the completion after the last. */
  step(): void {
    const running = this.running;
    if (running === null) return;
    try {
      if (running.next < running.regions.length) {
        const end = Math.min(running.regions.length, running.next + this.options.batchRegions);
        this.volume.transferRegions(running.regions.slice(running.next, end));
        running.next = end;
        if (running.next < running.regions.length) return;
      }
      this.volume.completeCycle();
      this.running = null;
      this.completed++;
      this.report(running);
    } catch (error) {
      this.fail(error);
      return;
    }
    this.options.onEvent?.();
    if (this.pending) {
      this.pending = false;
      this.begin(this.volume.phase === 'replicating');
    } else {
      this.notifyIdle();
    }
  }

  private report(running: RunningCycle): void {
    const seconds = (performance.now() - running.startedMs) / 1000;
    const lagSeconds = running.swapAt === null ? null : (Date.now() - running.swapAt.getTime()) / 1000;
    const report: CycleReport = {
      cycle: running.cycle,
      resumed: running.resumed,
      regions: running.regions.length,
      bytes: running.regions.length * this.volume.regionSize,
      seconds,
      lagSeconds,
    };
    this.lastCompletedCycle = running.cycle;
    this.lastCycleSeconds = seconds;
    if (running.swapAt !== null) this.lastCompletedSwapAt = running.swapAt;
    if (report.regions === 0 && !report.resumed) this.completedEmpty++;
    else {
      // `cycle N: completed, sent R region(s), B bytes in S s` stays a prefix: the bench and tests parse it.
      this.options.log(
        `cycle ${report.cycle}: ${report.resumed ? 'resumed and completed' : 'completed'}, sent ` +
          `${report.regions} region(s), ${report.bytes} bytes in ${seconds.toFixed(3)} s` +
          (lagSeconds === null ? '' : `, lag ${lagSeconds.toFixed(3)} s`),
      );
    }
    this.options.onCycle?.(report);
  }

  private fail(error: unknown): void {
    this.running = null;
    this.pending = false;
    this.failure =
      error instanceof Error ? `${(error as { code?: string }).code ?? error.name}: ${error.message}` : String(error);
    this.options.log(`cycle: stopped: ${this.failure}`);
    this.options.onEvent?.();
    this.notifyIdle();
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
