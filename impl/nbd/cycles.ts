// The cycle runner of `cowmap serve`: startCycle (the swap), a transfer of every
// region of C in batches of `batchRegions` (one transferRegions call, so one sync
// of the secondary, per batch), completeCycle. Each batch is a setImmediate
// callback, so client requests are served between batches: a write during a cycle
// takes the copy-on-write path of the volume, which keeps the snapshot view the
// cycle sends (docs/protocol.md INV-SNAPSHOT). A request during a running cycle
// starts one more right after it. A volume opened in the middle of a cycle resumes
// it (`resumeInterrupted`).

import type { ReplicatedVolume } from '../replicatedVolume.ts';

export interface CycleReport {
  cycle: number;
  resumed: boolean;
  regions: number;
  bytes: number;
  seconds: number;
}

export interface CycleOptions {
  readonly batchRegions: number;
  readonly log: (line: string) => void;
  /** Called right after each swap (not on a resume), for tests: the primary is P@swap now. */
  readonly onSwap?: (cycle: number) => void;
  /** Called right after each completed cycle. */
  readonly onCycle?: (report: CycleReport) => void;
}

interface RunningCycle {
  cycle: number;
  resumed: boolean;
  regions: number[];
  next: number;
  started: bigint;
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

  constructor(volume: ReplicatedVolume, options: CycleOptions) {
    this.volume = volume;
    this.options = options;
  }

  get isRunning(): boolean {
    return this.running !== null;
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
      this.running = { cycle: this.volume.cycle, resumed, regions, next: 0, started: process.hrtime.bigint() };
      this.options.log(
        `cycle ${this.volume.cycle}: ${resumed ? 'resuming an interrupted cycle' : 'swap'}, ${regions.length} region(s) to send`,
      );
      setImmediate(() => this.step());
    } catch (error) {
      this.fail(error);
    }
  }

  private step(): void {
    const running = this.running;
    if (running === null) return;
    try {
      const end = Math.min(running.regions.length, running.next + this.options.batchRegions);
      this.volume.transferRegions(running.regions.slice(running.next, end));
      running.next = end;
      if (running.next < running.regions.length) {
        setImmediate(() => this.step());
        return;
      }
      this.volume.completeCycle();
      this.running = null;
      this.completed++;
      this.report(running);
    } catch (error) {
      this.fail(error);
      return;
    }
    if (this.pending) {
      this.pending = false;
      this.begin(this.volume.phase === 'replicating');
    } else {
      this.notifyIdle();
    }
  }

  private report(running: RunningCycle): void {
    const seconds = Number(process.hrtime.bigint() - running.started) / 1e9;
    const report: CycleReport = {
      cycle: running.cycle,
      resumed: running.resumed,
      regions: running.regions.length,
      bytes: running.regions.length * this.volume.regionSize,
      seconds,
    };
    this.options.log(
      `cycle ${report.cycle}: ${report.resumed ? 'resumed and completed' : 'completed'}, sent ` +
        `${report.regions} region(s), ${report.bytes} bytes in ${seconds.toFixed(3)} s`,
    );
    this.options.onCycle?.(report);
  }

  private fail(error: unknown): void {
    this.running = null;
    this.pending = false;
    this.failure =
      error instanceof Error ? `${(error as { code?: string }).code ?? error.name}: ${error.message}` : String(error);
    this.options.log(`cycle: stopped: ${this.failure}`);
    this.notifyIdle();
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
