// cowmap explore --regions N --values V [--crash] [--states-max M] [--out FILE]
// A breadth-first search over every reachable model state; on a violation it
// writes the shortest path as a v1 trace, prints it, and exits 1.

import { writeFileSync } from 'node:fs';
import { explore, exploreRegionSize, regionName } from '../../model/explorer.ts';
import { judge, step } from '../../model/rules.ts';
import { initialState } from '../../model/rules.ts';
import type { ModelState } from '../../model/types.ts';
import { formatTrace, recordsOfOps } from '../../harness/trace/writer.ts';
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
      `explored regions=${regions} values=${valueCount} crash=${values.crash ? 'yes' : 'no'}`,
      `  states:       ${result.states}`,
      `  transitions:  ${result.transitions}`,
      `  rejections:   ${result.rejections} (checked to change nothing; not counted as transitions)`,
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
  // Replay the path on the rules to mark the steps that are rejections (expectError).
  let state: ModelState = initialState({ regions, regionSize: exploreRegionSize }, '');
  const rejectedAt: (string | null)[] = result.violation.path.map((op) => {
    const rejection = judge(state, op);
    state = step(state, op).state;
    return rejection?.code ?? null;
  });
  const first = result.violation.violations[0]!;
  const text = formatTrace(
    {
      regions,
      regionSize: exploreRegionSize,
      names,
      title: `explorer counterexample: ${first.invariant}`,
      source: `cowmap explore --regions ${regions} --values ${valueCount}${values.crash ? ' --crash' : ''}`,
    },
    [`The shortest path to a state that breaks ${first.invariant}: ${first.message}`],
    recordsOfOps(result.violation.path, names, (index) => rejectedAt[index] ?? null),
  );
  writeFileSync(values.out, text);
  process.stdout.write(
    `VIOLATION ${first.invariant}: ${first.message}\nshortest path (${result.violation.path.length} steps), written to ${values.out}:\n${text}`,
  );
  return 1;
});
