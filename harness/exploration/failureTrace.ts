// A failure of the crash exploration as a v1 trace (docs/traces.md), saved where
// the exploration was told: the failing case rerun from scratch, without any
// restore, so that the trace is checked to reproduce; the power or torn subset as
// a seed of the crash layer's coins when one draws it, else in a comment. A case
// that trace format v1 cannot say (a crash inside create or recovery, rot) is
// saved as text, in words. See the head of explorer.ts.

import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import type { Difference } from '../oracle/oracle.ts';
import { runScenario, scenarioTrace } from '../scenario.ts';
import type { ScenarioResult } from '../scenario.ts';
import { ExplorationSut } from '../sut/explorationSut.ts';
import type { TraceRecord } from '../trace/writer.ts';
import type { Explorer } from './explorer.ts';
import type { FoundFailure } from './found.ts';
import { describeOp, shortenLabels } from './operations.ts';
import type { ExplorationOptions } from './options.ts';
import { explorationDefaults } from './options.ts';
import type { TraceCandidate } from './traceCandidates.ts';
import { traceCandidates } from './traceCandidates.ts';

export interface ExplorationFailure {
  readonly message: string;
  readonly differences: readonly Difference[];
  /** What failed, in words: the prefix, the operation, the crash point and choice. */
  readonly description: string;
  /** The v1 trace of the failing case. */
  readonly trace: string;
  /** Where the trace was saved, or null. */
  readonly file: string | null;
  /** Whether rerunning the trace's steps from scratch (no restore, seed not explicit choices) fails too. */
  readonly reproduced: boolean;
  /** Whether the trace says exactly which subset the crash kept (a matching seed was found, or none was needed). */
  readonly exact: boolean;
  /** Set when trace format v1 cannot say the case (a crash inside create or recovery, rot): the steps in words. */
  readonly notReplayable?: string;
}

/**
 * A failure that trace format v1 cannot say (a crash inside create or inside
 * recovery, rot): the steps in words, saved as a text file next to the traces.
 */
function specialFailure(
  explorer: Explorer,
  found: FoundFailure,
  special: string,
  options: ExplorationOptions,
): ExplorationFailure {
  const volumeName = options.volumeName ?? 'the reference implementation';
  const steps = found.steps.map((step) =>
    step.kind === 'op'
      ? explorer.describe(step.op)
      : step.kind === 'crashInside'
        ? `${explorer.describe(step.op)} crashed after io ${step.crash.afterIo}`
        : step.kind,
  );
  const lines = [
    `# Found by the crash exploration (harness/exploration/explorer.ts) on ${volumeName}, geometry ${geometry(explorer)}.`,
    `# Not expressible in trace format v1; the case in words:`,
    `#   ${shortenLabels(special)}`,
    `#   prefix: ${shortenLabels(explorer.describePath(found.node.path))}`,
    `#   steps after it: ${shortenLabels(steps.join(', ')) || '(none)'}`,
    `# It failed: ${shortenLabels(found.error.message)}`.split('\n').join('\n# '),
  ];
  const text = `${lines.join('\n')}\n`;
  let file: string | null = null;
  const dir = options.failuresDir === undefined ? explorationDefaults.failuresDir : options.failuresDir;
  if (dir !== null) {
    mkdirSync(dir, { recursive: true });
    const hash = createHash('sha256').update(text).digest('hex').slice(0, 8);
    file = join(dir, `crash-${slug(volumeName)}-${slug(special)}-${hash}.txt`);
    writeFileSync(file, text);
  }
  return {
    message: found.error.message,
    differences: found.error.differences,
    description: special,
    trace: text,
    file,
    reproduced: false,
    exact: false,
    notReplayable: special,
  };
}

function geometry(explorer: Explorer): string {
  return `${explorer.geometry.regions} regions of ${explorer.geometry.regionSize} bytes`;
}

function slug(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 40) || 'x'
  );
}

/** The case in words: the crashing operation and its crash point, or the crash between operations, and the prefix. */
function describeFound(explorer: Explorer, found: FoundFailure): string {
  const { book, names } = explorer;
  const choice = found.choice;
  const what =
    found.op !== null
      ? `${describeOp(found.op, book, names)} crashed after io ${found.crashAfterIo} (${choice?.mode ?? 'process'})`
      : choice !== null
        ? `a ${choice.mode} crash between operations`
        : `${found.plainOp === null ? 'an operation' : describeOp(found.plainOp, book, names)} (no crash)`;
  const powerLoss = found.powerLoss === undefined ? '' : '; recovered, finished the cycle, then lost power';
  return `${what} after ${explorer.describePath(found.node.path)}${powerLoss}`;
}

/** The trace's file name: the volume, the crash, a hash of the trace. */
function traceFileName(found: FoundFailure, volumeName: string, trace: string): string {
  const choice = found.choice;
  const hash = createHash('sha256').update(trace).digest('hex').slice(0, 8);
  const crashed =
    found.op !== null
      ? `${found.op.type}-io${found.crashAfterIo}-${choice?.mode ?? 'process'}`
      : choice !== null
        ? `between-${choice.mode}`
        : `${found.plainOp?.type ?? 'op'}-nocrash`;
  const where = found.powerLoss === undefined ? crashed : `${crashed}-then-power`;
  return `crash-${slug(volumeName)}-${slug(where)}-${hash}.jsonl`;
}

type Rerun = { candidate: TraceCandidate; result: ScenarioResult };

/** Reruns the candidates from scratch, no restore, in turn: the first that fails, else the first. */
async function rerun(explorer: Explorer, found: FoundFailure, options: ExplorationOptions): Promise<Rerun> {
  const volumeName = options.volumeName ?? 'the reference implementation';
  const seedSearchMax = options.seedSearchMax ?? explorationDefaults.seedSearchMax;
  let chosen: Rerun | null = null;
  for (const candidate of traceCandidates(explorer, found, seedSearchMax)) {
    const volumeClass = options.volumeClass ?? ReplicatedVolume;
    const sut = new ExplorationSut(volumeName, volumeClass, candidate.crashChoices, candidate.betweenCrash);
    const result = await runScenario(sut, explorer.geometry, candidate.steps, explorer.book);
    if (chosen === null || (chosen.result.failure === null && result.failure !== null)) chosen = { candidate, result };
    if (result.failure !== null) break;
  }
  if (chosen === null) throw new Error('exploration: a failure with no way to write it as a trace');
  return chosen;
}

/** The failing case as a v1 trace, checked by a rerun from scratch, saved where the options say. */
export async function traceOfFailure(
  explorer: Explorer,
  found: FoundFailure,
  options: ExplorationOptions,
): Promise<ExplorationFailure> {
  if (found.special !== undefined) return specialFailure(explorer, found, found.special, options);
  const volumeName = options.volumeName ?? 'the reference implementation';
  const { candidate, result } = await rerun(explorer, found, options);
  const records: TraceRecord[] = [...result.records];
  if (candidate.comment !== null)
    records.splice(Math.min(found.node.path.length, records.length), 0, { comment: shortenLabels(candidate.comment) });
  const description = describeFound(explorer, found);
  const firstLine = (text: string) => shortenLabels(text.split('\n')[0]!);
  const header = [
    `Found by the bounded crash exploration (harness/exploration/explorer.ts) on ${volumeName}: ${description}.`,
    `It failed: ${firstLine(found.error.message)}`,
    result.failure === null
      ? 'WARNING: rerun from scratch, these steps did NOT fail (the exploration restores saved prefix states; see its report).'
      : `Rerun from scratch, it fails at step ${result.failure.stepIndex + 1}: ${firstLine(result.failure.message)}`,
  ];
  const title = `crash exploration: ${found.error.kind} on ${volumeName}`;
  const trace = scenarioTrace(explorer.geometry, records, title, header);
  let file: string | null = null;
  const dir = options.failuresDir === undefined ? explorationDefaults.failuresDir : options.failuresDir;
  if (dir !== null) {
    mkdirSync(dir, { recursive: true });
    file = join(dir, traceFileName(found, options.volumeName ?? 'reference', trace));
    writeFileSync(file, trace);
  }
  return {
    message: found.error.message,
    differences: found.error.differences,
    description,
    trace,
    file,
    reproduced: result.failure !== null,
    exact: candidate.exact,
  };
}
