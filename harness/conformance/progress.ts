// Where a run is, for a person watching: on a terminal one live line, rewritten
// as the run moves; otherwise (CI logs, a pipe) one line every 10 s, so that a
// long run is never silent.

export interface ProgressStatus {
  readonly level: string;
  readonly check: string;
  readonly detail: string;
  readonly steps: number;
  readonly elapsedSeconds: number;
  readonly remainingSeconds: number;
}

export function formatProgress(status: ProgressStatus): string {
  const time = `${Math.round(status.elapsedSeconds)} s elapsed, ${Math.round(status.remainingSeconds)} s of the budget left`;
  return `level ${status.level}, ${status.check}: ${status.detail}; ${status.steps} steps, ${time}`;
}

export const progressIntervalMs = 10_000;
const liveWidthMax = 160;

/** Prints progress to `stream`: live on a terminal, every `intervalMs` elsewhere. Call stop() at the end. */
export class ProgressPrinter {
  private last: ProgressStatus | null = null;
  private lastLiveMs = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly intervalMs: number = progressIntervalMs,
  ) {
    if (this.stream.isTTY !== true) {
      this.timer = setInterval(() => this.printLine(), this.intervalMs);
      this.timer.unref();
    }
  }

  readonly update = (status: ProgressStatus): void => {
    this.last = status;
    const now = performance.now();
    // A live line ten times a second at most: a terminal need not redraw for every path.
    if (this.stream.isTTY !== true || now - this.lastLiveMs < 100) return;
    this.lastLiveMs = now;
    this.stream.write(`\r\x1b[K  ${formatProgress(status).slice(0, liveWidthMax)}`);
  };

  private printLine(): void {
    if (this.last !== null) this.stream.write(`conform: ${formatProgress(this.last)}\n`);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.stream.isTTY === true) this.stream.write('\r\x1b[K');
  }
}
