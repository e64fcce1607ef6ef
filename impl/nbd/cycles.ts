// The cycle runner of `cowmap serve`: startCycle (the swap), a transfer of every
// region of C in slices of `batchRegions` (one transferRegions call, so one sync
// of the secondary, per slice), completeCycle. The slices run in the server's one
// pump (batchScheduler.ts), interleaved fairly with client batches: a write during
// a cycle takes the copy-on-write path of the volume, which keeps the snapshot view
// the cycle sends (docs/protocol.md INV-SNAPSHOT). A request during a running cycle
// starts one more right after it. A volume opened in the middle of a cycle resumes
// it (`resumeInterrupted`). Only cycles that send something are logged.
//
// A remote secondary (docs/remote.md): a slice or the completion that throws
// ReplicaLinkError changed nothing durable on the primary (impl/errors.ts), so the
// cycle pauses instead of failing: the server goes on serving, and the same slice
// (or the completion) is tried again from a timer with a bounded backoff
// (linkRetry.ts). A completion refused with `lostSent` (the far side lost regions
// it had confirmed in this cycle) sends the regions the volume counts as unsent
// again, then completes. Any other error stops the cycles (the handle is poisoned).

import { ReplicaLinkError } from '../errors.ts';
import type { ReplicatedVolume } from '../replicatedVolume.ts';
import { type BackoffPolicy, cycleRetryBackoff, LinkRetry, type RetryEvent, type RetryState } from './linkRetry.ts';

/** What the runner uses of the volume (a test may hand it a volume whose replica fails on cue). */
export type CycleVolume = Pick<
  ReplicatedVolume,
  | 'phase'
  | 'cycle'
  | 'regionSize'
  | 'startCycle'
  | 'currentRegions'
  | 'unsentRegions'
  | 'transferRegions'
  | 'completeCycle'
>;

export interface CycleReport {
  cycle: number;
  resumed: boolean;
  regions: number;
  bytes: number;
  seconds: number;
  /** The secondary's age right after this completion: now minus this cycle's swap (null for a resumed cycle). */
  lagSeconds: number | null;
  /** Slices or completions of this cycle that a link fault paused (each retried later). */
  linkFaults: number;
  /** Regions sent again because the far side lost them after confirming them (`lostSent`). */
  regionsResent: number;
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
  /** Called at each cycle event (begin, completion, failure, pause): the server rewrites its status file. */
  readonly onEvent?: () => void;
  /** The waits between attempts after a link fault (default cycleRetryBackoff: 0.5 s doubling to 30 s). */
  readonly retryBackoff?: BackoffPolicy;
}

/** The link faults the runner saw, for serve.status (serveStatus.ts). */
export interface CycleRetryStatus extends RetryState {
  /** A cycle is paused, waiting for its retry. */
  readonly paused: boolean;
  /** Link faults since the server started (every failed attempt). */
  readonly faultsTotal: number;
  /** Completions refused because the far side lost confirmed regions (each resent them). */
  readonly resends: number;
  readonly regionsResent: number;
}

interface RunningCycle {
  cycle: number;
  resumed: boolean;
  regions: number[];
  next: number;
  /** Wall clock of the swap (null when resumed: the swap was before this process). */
  swapAt: Date | null;
  startedMs: number;
  linkFaults: number;
  regionsResent: number;
  /** Completions of this cycle refused with lostSent. */
  lostSends: number;
}

export class CycleRunner {
  private readonly volume: CycleVolume;
  private readonly options: CycleOptions;
  private readonly retry: LinkRetry;
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
  private faultsTotal = 0;
  private resends = 0;
  private regionsResent = 0;

  constructor(volume: CycleVolume, options: CycleOptions) {
    this.volume = volume;
    this.options = options;
    this.retry = new LinkRetry(options.retryBackoff ?? cycleRetryBackoff);
  }

  /** A slice is ready to run (the pump's question): a cycle is open and not paused after a link fault. */
  get isRunning(): boolean {
    return this.running !== null && !this.retry.waiting;
  }

  /** A cycle is open, running or paused. */
  get hasCycle(): boolean {
    return this.running !== null;
  }

  get retryStatus(): CycleRetryStatus {
    return {
      ...this.retry.status,
      paused: this.running !== null && this.retry.waiting,
      faultsTotal: this.faultsTotal,
      resends: this.resends,
      regionsResent: this.regionsResent,
    };
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
    this.retry.cancel();
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
      const startedMs = performance.now();
      this.running = {
        cycle: this.volume.cycle,
        resumed,
        regions,
        next: 0,
        swapAt,
        startedMs,
        linkFaults: 0,
        regionsResent: 0,
        lostSends: 0,
      };
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

  /**
   * One slice: a transferRegions call of up to `batchRegions` regions; the
   * completion after the last. A link fault pauses the cycle (see the top of the file).
   */
  step(): void {
    const running = this.running;
    if (running === null || this.retry.waiting) return;
    try {
      if (running.next < running.regions.length) {
        const end = Math.min(running.regions.length, running.next + this.options.batchRegions);
        this.volume.transferRegions(running.regions.slice(running.next, end));
        running.next = end;
        this.linkWorked(running);
        if (running.next < running.regions.length) return;
      }
      this.volume.completeCycle();
      this.linkWorked(running);
      this.running = null;
      this.completed++;
      this.report(running);
    } catch (error) {
      if (error instanceof ReplicaLinkError) this.pause(running, error);
      else this.fail(error);
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

  /** A link fault: nothing durable changed; the cycle waits for its retry, clients go on. */
  private pause(running: RunningCycle, error: ReplicaLinkError): void {
    running.linkFaults++;
    this.faultsTotal++;
    // The first loss of a cycle is no fault of the link (it answered; the far side was
    // restarted with an older image): the regions go again at once. A far side that
    // loses them again is waited for like a link fault, so that it is never a busy loop.
    if (error.lostSent && running.lostSends++ === 0) {
      this.resendLost(running);
      this.options.onEvent?.();
      this.options.wake();
      return;
    }
    const event = this.retry.failed(error);
    this.logFault(running.cycle, event, error);
    if (error.lostSent) this.resendLost(running);
    if (event.kind !== 'back' && event.kind !== 'fine') this.retry.retryIn(event.delayMs, () => this.options.wake());
    this.options.onEvent?.();
  }

  /** The far side lost regions it had confirmed: the volume counts them unsent again; they go again. */
  private resendLost(running: RunningCycle): void {
    running.regions = this.volume.unsentRegions();
    running.next = 0;
    running.regionsResent += running.regions.length;
    this.resends++;
    this.regionsResent += running.regions.length;
    this.options.log(
      `cycle ${running.cycle}: the secondary lost regions it had confirmed; ` +
        `${running.regions.length} region(s) to send again`,
    );
  }

  private logFault(cycle: number, event: RetryEvent, error: ReplicaLinkError): void {
    if (event.kind !== 'down' && event.kind !== 'changed') return;
    const what = event.kind === 'down' ? 'link down' : 'link still down, now';
    const backoff = this.options.retryBackoff ?? cycleRetryBackoff;
    this.options.log(
      `cycle ${cycle}: ${what}: ${error.code}: ${error.message}; paused, clients still served; ` +
        `retrying in ${seconds(event.delayMs)} s (backoff up to ${seconds(backoff.maxMs)} s)`,
    );
  }

  private linkWorked(running: RunningCycle): void {
    const event = this.retry.succeeded();
    if (event.kind !== 'back') return;
    this.options.log(
      `cycle ${running.cycle}: link back after ${event.failedAttempts} failed attempt(s) over ` +
        `${seconds(event.downMs)} s; the cycle goes on`,
    );
    this.options.onEvent?.();
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
      linkFaults: running.linkFaults,
      regionsResent: running.regionsResent,
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
          (lagSeconds === null ? '' : `, lag ${lagSeconds.toFixed(3)} s`) +
          (running.linkFaults === 0
            ? ''
            : `, ${running.linkFaults} link fault(s), ${running.regionsResent} region(s) resent`),
      );
    }
    this.options.onCycle?.(report);
  }

  private fail(error: unknown): void {
    this.retry.cancel();
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

/** Milliseconds as seconds for a log line: "0.5", "30". */
function seconds(ms: number): string {
  return String(Math.round(ms) / 1000);
}
