// Processes of the implementation started ahead of the restarts that crashes
// make: each has said hello and opened nothing, so that recover() does not wait
// for the implementation's start-up (an interpreter, a version-manager shim),
// which takes far longer than a step of a generated sequence.

import type { AdapterProcess } from './adapterProcess.ts';
import type { Answer } from './answers.ts';

/** A process started, its hello sent; the answer settles without ever rejecting. */
export interface Starting {
  readonly process: AdapterProcess;
  readonly hello: Promise<{ readonly answer: Answer } | { readonly error: unknown }>;
}

export class Standbys {
  /** Oldest first. */
  private readonly queue: Starting[] = [];

  constructor(
    private readonly countMax: number,
    private readonly start: () => Starting,
  ) {}

  /** The oldest standby still alive, if any; those that died before they were needed are dropped. */
  take(): Starting | undefined {
    for (;;) {
      const taken = this.queue.shift();
      if (taken === undefined || (!taken.process.closed && taken.process.violation === null)) return taken;
      // Its failure shows again in the process that replaces it, if it recurs.
      taken.process.killGroup();
    }
  }

  /** Starts standbys until there are `countMax`. */
  fill(): void {
    while (this.queue.length < this.countMax) this.queue.push(this.start());
  }

  /** Ends every standby: one that never opened anything exits once its input closes; one that does not is killed. */
  async end(exitTimeoutMs: number, note: (line: string) => void): Promise<void> {
    const ending = this.queue.splice(0);
    for (const standby of ending) {
      note(`ended standby pid ${standby.process.pid}`);
      standby.process.endInput();
    }
    for (const standby of ending) {
      if (!(await standby.process.waitClosed(exitTimeoutMs))) standby.process.killGroup();
    }
  }

  /** Kills every standby at once. */
  kill(): void {
    for (const standby of this.queue.splice(0)) standby.process.killGroup();
  }
}
