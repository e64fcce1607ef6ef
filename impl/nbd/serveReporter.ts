// What a running server tells: the status file DIR/serve.status (serveStatus.ts),
// rewritten at each cycle event and every second, and a summary line every
// `summaryEverySeconds` when no cycle sent anything in that time (cycles that send
// something log their own lines: cycles.ts). Both are informative only.

import type { ReplicatedVolume } from '../replicatedVolume.ts';
import type { SchedulerTotals } from './batchScheduler.ts';
import type { BufferBudget } from './bufferBudget.ts';
import type { CycleRunner } from './cycles.ts';
import { removeServeStatus, type ServeStatus, writeServeStatus } from './serveStatus.ts';
import { linkStatusOf } from './volumeLink.ts';

/** What the reporter reads of the server. */
export interface ReportedServer {
  readonly volume: ReplicatedVolume;
  readonly cycles: CycleRunner;
  readonly budget: BufferBudget;
  readonly scheduler: { readonly totals: SchedulerTotals };
  readonly connectionCount: number;
}

export interface ReporterOptions {
  readonly log: (line: string) => void;
  readonly summaryEverySeconds: number;
  readonly statusFile: boolean;
}

const statusEveryMs = 1000;

export class ServeReporter {
  private readonly server: ReportedServer;
  private readonly options: ReporterOptions;
  private listening = '';
  private statusTimer: NodeJS.Timeout | null = null;
  private summaryTimer: NodeJS.Timeout | null = null;
  /** The counts at the last summary, to tell what happened since. */
  private last = { cycles: 0, sentCycles: 0, requests: 0, bytesWritten: 0 };

  constructor(server: ReportedServer, options: ReporterOptions) {
    this.server = server;
    this.options = options;
  }

  start(listening: string): void {
    this.listening = listening;
    this.writeStatus();
    if (this.options.statusFile) {
      this.statusTimer = setInterval(() => this.writeStatus(), statusEveryMs);
      this.statusTimer.unref();
    }
    if (this.options.summaryEverySeconds > 0) {
      this.summaryTimer = setInterval(() => this.summary(), this.options.summaryEverySeconds * 1000);
      this.summaryTimer.unref();
    }
  }

  stop(): void {
    if (this.statusTimer !== null) clearInterval(this.statusTimer);
    if (this.summaryTimer !== null) clearInterval(this.summaryTimer);
    this.statusTimer = null;
    this.summaryTimer = null;
    if (this.options.statusFile && this.listening !== '') removeServeStatus(this.server.volume.dir);
    this.listening = '';
  }

  /** Rewrites DIR/serve.status; a failure to write it is logged, never fatal (it is informative). */
  writeStatus(): void {
    if (!this.options.statusFile || this.listening === '') return;
    try {
      writeServeStatus(this.server.volume.dir, this.status());
    } catch (error) {
      this.options.log(`nbd: cannot write the status file: ${(error as Error).message}`);
    }
  }

  status(): ServeStatus {
    const { volume, cycles } = this.server;
    return {
      pid: process.pid,
      updatedAt: new Date().toISOString(),
      listening: this.listening,
      connections: this.server.connectionCount,
      bufferedBytes: this.server.budget.usedBytes,
      cycle: volume.cycle,
      phase: volume.phase,
      cycleRunning: cycles.hasCycle,
      regionsLeft: cycles.regionsLeft,
      nextRegions: safeCount(() => volume.nextRegions().length),
      cyclesCompleted: cycles.completed,
      lastCompletedCycle: cycles.lastCompletedCycle,
      lastCompletedSwapAt: cycles.lastCompletedSwapAt?.toISOString() ?? null,
      lastCycleSeconds: cycles.lastCycleSeconds,
      failure: cycles.failure,
      link: safeLink(volume),
      retry: cycles.retryStatus,
    };
  }

  /** The summary line, when no cycle sent anything since the last one. */
  private summary(): void {
    const { cycles, scheduler } = this.server;
    const sentCycles = cycles.completed - cycles.completedEmpty;
    const now = { cycles: cycles.completed, sentCycles, ...scheduler.totals };
    if (sentCycles === this.last.sentCycles) {
      const swapAt = cycles.lastCompletedSwapAt;
      const lag = swapAt === null ? 'none completed' : `${((Date.now() - swapAt.getTime()) / 1000).toFixed(3)} s`;
      this.options.log(
        `summary: ${now.cycles - this.last.cycles} cycle(s) run in the last ${this.options.summaryEverySeconds} s, ` +
          `${now.requests - this.last.requests} request(s), ${now.bytesWritten - this.last.bytesWritten} bytes written, ` +
          `lag ${lag}`,
      );
    }
    this.last = now;
  }
}

/** A count read from the volume, 0 when the handle cannot answer (closed or poisoned). */
function safeCount(read: () => number): number {
  try {
    return read();
  } catch {
    return 0;
  }
}

/** The replica's link status (no I/O); null for a local secondary or when it cannot answer. */
function safeLink(volume: ReplicatedVolume): ServeStatus['link'] {
  try {
    return linkStatusOf(volume);
  } catch {
    return null;
  }
}
