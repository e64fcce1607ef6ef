// cowmap mutants [--seed N] [--time-budget S] [--quick] [--only NAME,...] [--stages KEY,...]
// The mutation self-check: runs each verify stage on its own against each named
// broken variant of the reference implementation and prints a table: for every
// stage, caught (and the time to detection) or missed, and the first check that
// fails. Exit 1 if any mutant escapes every stage run. `--stages` picks stages
// by key (fig4, traces, paths, fuzz, crashes); `make test` runs only the two
// generic nets, fuzz and crashes, which must catch every mutant on their own.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mutants } from '../../harness/mutants.ts';
import { ReferenceSut } from '../../harness/referenceSut.ts';
import { bundledTracesDir, traceFiles } from '../../harness/trace/traceFiles.ts';
import { standardStages } from '../../harness/verifyPlan.ts';
import { verify } from '../../harness/verify.ts';
import type { Command } from '../main.ts';
import { integerOption, usageError } from './options.ts';

interface Detection {
  readonly stage: string;
  readonly caught: boolean;
  readonly seconds: number;
  readonly check: string;
}

interface Row {
  readonly name: string;
  readonly description: string;
  readonly detections: readonly Detection[];
}

/** Stage keys for --stages, matched against the start of each stage's name. */
const stageKeys: Readonly<Record<string, RegExp>> = {
  fig4: /^FIG\. 4/,
  traces: /^traces\//,
  paths: /^path tests/,
  fuzz: /^fast-check/,
  crashes: /^crash exploration/,
};

/** The first line of a failure that says which check it was. */
function checkOf(message: string): string {
  const line = message.split('\n').find((text) => /differs|allows|says|broke|breaks|expected|rejects|not one/.test(text)) ?? message.split('\n')[0]!;
  return line.trim().replace(/^line \d+ '[^']*': |^step \d+ '[^']*': |^path \d+: |^step \d+ \([^)]*\): /, '').slice(0, 80);
}

export const command: Command = {
  summary: 'the mutation self-check',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        seed: { type: 'string', default: '1' },
        'time-budget': { type: 'string', default: '30' },
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        stages: { type: 'string' },
      },
      strict: true,
    });
    const seed = integerOption('--seed', values.seed, 0, 2 ** 31 - 1);
    const budget = integerOption('--time-budget', values['time-budget'], 1, 86_400);
    if (seed === null || budget === null) return usageError('mutants');
    const names = values.only === undefined ? Object.keys(mutants) : values.only.split(',');
    for (const name of names) if (mutants[name] === undefined) return usageError('mutants', `no mutant named '${name}'`);
    const keys = values.stages === undefined ? Object.keys(stageKeys) : values.stages.split(',');
    for (const key of keys) {
      if (stageKeys[key] === undefined) return usageError('mutants', `no stage '${key}' (stages: ${Object.keys(stageKeys).join(', ')})`);
    }
    const selected = (stageName: string) => keys.some((key) => stageKeys[key]!.test(stageName));
    // Failing traces of mutants go to a scratch folder: they are expected, not news.
    const scratch = mkdtempSync(join(tmpdir(), 'cowmap-mutants-'));
    const rows: Row[] = [];
    try {
      for (const name of names) {
        const mutant = mutants[name]!;
        const label = `mutant ${name}`;
        const detections: Detection[] = [];
        // Every stage on its own, so the table shows what each check catches, not
        // only the first: the hand-written traces should not be the only net.
        const stages = standardStages({ quick: values.quick, mutantName: name, volumeClass: mutant.volumeClass }).filter((stage) => selected(stage.name));
        if (stages.length !== keys.length) throw new Error(`mutants: ${stages.length} stages matched ${keys.length} keys`);
        for (const stage of stages) {
          const result = await verify([stage], {
            makeSut: () => new ReferenceSut({ volumeClass: mutant.volumeClass, name: label }),
            seed,
            budgetSeconds: budget,
            traceFiles: traceFiles(bundledTracesDir),
            failuresDir: scratch,
          });
          const stageResult = result.stages[0]!;
          const caught = stageResult.failure !== null;
          detections.push({ stage: stage.name, caught, seconds: stageResult.seconds, check: caught ? checkOf(stageResult.failure!) : '' });
        }
        rows.push({ name, description: mutant.description, detections });
        const first = detections.find((d) => d.caught);
        process.stderr.write(`${first === undefined ? 'MISSED' : 'caught'} ${name}: ${detections.filter((d) => d.caught).length}/${detections.length} stages\n`);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    const stageNames = rows[0]?.detections.map((d) => d.stage) ?? [];
    const lines = [
      `| mutant | what it breaks | ${stageNames.join(' | ')} | first check that fails |`,
      `|---|---|${stageNames.map(() => '---|').join('')}---|`,
      ...rows.map((row) => {
        const cells = row.detections.map((d) => (d.caught ? `caught in ${d.seconds.toFixed(2)} s` : '**missed**'));
        const first = row.detections.find((d) => d.caught);
        return `| ${row.name} | ${row.description} | ${cells.join(' | ')} | ${first === undefined ? '**MISSED**' : first.check.replace(/\|/g, '\\|')} |`;
      }),
    ];
    const missed = rows.filter((row) => !row.detections.some((d) => d.caught)).length;
    process.stdout.write(`${lines.join('\n')}\n\n${rows.length - missed} caught, ${missed} missed (seed ${seed}, time budget ${budget} s per randomised stage)\n`);
    return missed > 0 ? 1 : 0;
  },
};
