// Failures a user can act on: every kind of failure (a trace, a path, a
// fast-check sequence, a sweep run, a protocol rule) becomes one CheckFailure
// with the step, the expected / observed table, the shortest trace kept and the
// commands that replay it against the same adapter command.

import type { Geometry } from '../../model/types.ts';
import type { FuzzFailure } from '../fuzz/options.ts';
import { shellLine, shellQuote } from '../shellQuote.ts';
import type { Difference } from '../oracle/oracle.ts';
import { formatDifferences, formatFailure } from '../replay.ts';
import type { ReplayFailure } from '../replay.ts';
import type { CheckFailure } from './result.ts';

/** `npx cowmap replay FILE -- CMD`. */
export function replayCommand(file: string, command: readonly string[]): string {
  return `npx cowmap replay ${shellQuote(file)} -- ${shellLine(command)}`;
}

/** `npx cowmap conform --seed N --path P --check ID --regions N --region-size B -- CMD`: a fast-check counterexample, against the adapter. */
export function conformPathCommand(options: {
  readonly seed: number;
  readonly path: string;
  readonly checkId: string;
  readonly geometry: Geometry;
  readonly command: readonly string[];
}): string {
  const own = [
    '--seed',
    String(options.seed),
    '--path',
    options.path,
    '--check',
    options.checkId,
    '--regions',
    String(options.geometry.regions),
    '--region-size',
    String(options.geometry.regionSize),
  ];
  return `npx cowmap conform ${shellLine(own)} -- ${shellLine(options.command)}`;
}

export function fromReplay(failure: ReplayFailure, command: readonly string[]): CheckFailure {
  return {
    step: `line ${failure.line} '${failure.step}'`,
    message: formatFailure(failure),
    differences: failure.differences,
    trace: failure.file,
    replay: [replayCommand(failure.file, command)],
  };
}

/** A failure of a generated scenario (a path, a sweep run) whose trace was saved at `trace`. */
export function fromScenario(
  step: string | null,
  message: string,
  differences: readonly Difference[],
  trace: string,
  command: readonly string[],
): CheckFailure {
  return {
    step,
    message: [message, ...formatDifferences(differences, 'implementation')].join('\n'),
    differences,
    trace,
    replay: [replayCommand(trace, command)],
  };
}

export function fromFuzz(failure: FuzzFailure, conformCommand: string, command: readonly string[]): CheckFailure {
  const notes: string[] = [];
  if (failure.shrinkCutShort)
    notes.push(
      '(the shrink budget ran out: a shorter failing sequence may exist; the conform command below shrinks on from this one)',
    );
  if (!failure.reproduced)
    notes.push(
      '(the saved trace did not fail again on a fresh run: the failure may depend on timing or on state outside the volume)',
    );
  return {
    step: `step ${failure.stepIndex + 1} of ${failure.steps.length}`,
    message: [failure.message, ...formatDifferences(failure.differences, 'implementation'), ...notes].join('\n'),
    differences: failure.differences,
    trace: failure.tracePath,
    replay: [replayCommand(failure.tracePath, command), conformCommand],
  };
}

/** A protocol rule broken: no trace (the request is not a trace step), the check replays it. */
export function fromProtocolCheck(name: string, message: string, command: readonly string[]): CheckFailure {
  return {
    step: null,
    message: `${name}: ${message}`,
    differences: [],
    trace: null,
    replay: [`npx cowmap conform --check rules/protocol -- ${shellLine(command)}`],
  };
}
