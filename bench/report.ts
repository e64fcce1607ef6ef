// What each benchmark section hands back: figures (a median with its spread),
// correctness checks (the only thing that can fail the bench), and notes.

import type { Summary } from './stats.ts';

export interface Target {
  /** How the target reads, e.g. "<= 1.10". */
  readonly text: string;
  readonly met: boolean;
}

export interface Figure {
  /** The key in results.json (writeSteadyRatio, ...). */
  readonly key: string;
  /** What it measures, for the table. */
  readonly label: string;
  readonly unit: string;
  readonly summary: Summary;
  /** What it is measured against (the baseline), if a ratio. */
  readonly against?: string;
  readonly target?: Target;
  /** Supporting medians and counts, for the table's last column and results.json. */
  readonly detail?: string;
  /** What the run's own counts say about the figure (the floor set by the fdatasyncs, ...), for a missed target. */
  readonly why?: string;
}

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface SectionResult {
  readonly section: string;
  readonly figures: Figure[];
  readonly checks: Check[];
  readonly notes: string[];
  /** Raw per-repetition series and counts, as they go into results.json. */
  readonly data: Record<string, unknown>;
}

export class Checks {
  readonly list: Check[] = [];

  expect(name: string, ok: boolean, detail: string): boolean {
    this.list.push({ name, ok, detail });
    return ok;
  }

  /** One check for a whole series: records only the first failure (or one success). */
  expectAll(name: string, failures: readonly string[], okDetail: string): boolean {
    if (failures.length === 0) return this.expect(name, true, okDetail);
    return this.expect(name, false, `${failures.length} failure(s); first: ${failures[0]}`);
  }
}

export type Log = (line: string) => void;
