// cowmap explore --regions N --values V [--crash] [--consistent] [--states-max M] [--out FILE]
// A breadth-first search over every reachable model state; on a violation it
// writes the shortest path as a v1 trace, prints it, and exits 1. With
// --consistent the far side's consistent image D is a state variable of its own
// (docs/protocol.md section 10), so that INV-DR is checked in every state reached,
// not only on each step; the counterexample trace then says it needs the feature
// `consistent` (docs/traces.md), so that a replay on an implementation compares D.

import { writeFileSync } from 'node:fs';
import { exploreRegionSize, regionName } from '../../model/exploreEvents.ts';
import { explore } from '../../model/explorer.ts';
import { crashOutcomesUnchecked } from '../../model/crashOutcomes.ts';
import { initialState, judge, step } from '../../model/rules.ts';
import type { ModelState, Op } from '../../model/types.ts';
import { formatTrace, recordsOfOps, type TraceRecord } from '../../harness/trace/writer.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/explore.ts';
import { integerOption } from '../integerOption.ts';

export const command = defineCommand(description, ({ values }) => {
  const regions = integerOption('regions', values.regions, { min: 1, max: 8 });
  const valueCount = integerOption('values', values.values, { min: 1, max: 8 });
  const statesMax = integerOption('states-max', values['states-max'], { min: 1, max: 16_000_000 });
  const started = performance.now();
  const progress = process.stderr.isTTY && !values.quiet;
  const result = explore({
    regions,
    values: valueCount,
    crash: values.crash,
    consistent: values.consistent,
    statesMax,
    onProgress: progress
      ? (p) =>
          process.stderr.write(
            `\r  ${p.states.toLocaleString('en-US')} states, ${p.transitions.toLocaleString('en-US')} transitions, depth ${p.depth}`,
          )
      : undefined,
  });
  if (progress) process.stderr.write('\r\x1b[K');
  const seconds = (performance.now() - started) / 1000;
  const rate = Math.round(result.states / Math.max(seconds, 1e-6));
  process.stdout.write(
    `${[
      `explored regions=${regions} values=${valueCount} crash=${values.crash ? 'yes' : 'no'}` +
        (values.consistent ? ' consistent=yes' : ''),
      `  states:       ${result.states}`,
      `  transitions:  ${result.transitions}`,
      `  rejections:   ${result.rejections} (checked to change nothing; not counted as transitions)`,
      `  crash outcomes followed inside operations: ${result.crashOutcomes}`,
      `  depth:        ${result.depthMax}`,
      `  seconds:      ${seconds.toFixed(2)}`,
      `  states/s:     ${rate}`,
    ].join('\n')}\n`,
  );
  if (result.stoppedEarly)
    process.stdout.write(`  stopped early: --states-max ${statesMax} reached; the state space is larger\n`);
  if (result.violation === null) {
    process.stdout.write(
      result.stoppedEarly
        ? 'no violation in the states explored\n'
        : 'every invariant holds in every reachable state\n',
    );
    return 0;
  }
  const names = Array.from({ length: regions }, (_, region) => regionName(region, regions));
  const records = counterexampleRecords(regions, result.violation.path, result.violation.crashInside, names);
  const first = result.violation.violations[0]!;
  const text = formatTrace(
    {
      regions,
      regionSize: exploreRegionSize,
      names,
      title: `explorer counterexample: ${first.invariant}`,
      source: `cowmap explore --regions ${regions} --values ${valueCount}${values.crash ? ' --crash' : ''}${values.consistent ? ' --consistent' : ''}`,
      ...(values.consistent ? { features: ['consistent'] } : {}),
    },
    [`The shortest path to a state that breaks ${first.invariant}: ${first.message}`],
    records,
  );
  writeFileSync(values.out, text);
  process.stdout.write(
    `VIOLATION ${first.invariant}: ${first.message}\nshortest path (${result.violation.path.length} steps), written to ${values.out}:\n${text}`,
  );
  return 1;
});

/**
 * The explorer's path as trace records. A step whose crash came inside the operation
 * carries a crash point (`crashAfterIo: 0`, power mode): replayed on the model alone
 * it forks into every outcome docs/protocol.md section 5 allows, the explorer's among
 * them. A path that ends inside such a crash gets the `recover` that judges it.
 */
export function counterexampleRecords(
  regions: number,
  path: readonly Op[],
  crashInside: readonly (number | null)[],
  names: readonly string[],
): TraceRecord[] {
  // Replay the path on the rules to mark the steps that are rejections (expectError).
  let state: ModelState = initialState({ regions, regionSize: exploreRegionSize }, '');
  const rejectedAt = path.map((op, index) => {
    const rejection = judge(state, op);
    const outcome = crashInside[index] ?? null;
    state =
      outcome === null
        ? step(state, op).state
        : { ...crashOutcomesUnchecked(state, op, { torn: false })[outcome]!.state, crashed: true };
    return rejection?.code ?? null;
  });
  const records = recordsOfOps(path, names, (index) => rejectedAt[index] ?? null).map((record, index) =>
    crashInside[index] === null || crashInside[index] === undefined
      ? record
      : { ...record, crashAfterIo: 0, mode: 'power' as const },
  );
  if (crashInside.at(-1) !== null && crashInside.at(-1) !== undefined) records.push({ op: 'recover' });
  return records;
}
