// cowmap verify [--time-budget S] [--seed N] [--mutant NAME] [--quick] [--reports DIR]
// The main job: every stage of harness/verify.ts against the reference
// implementation (or a named mutant), the summary table, the transition-coverage
// reports, and exit 1 on any failure.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { mutants } from '../../harness/mutants.ts';
import { ReferenceSut } from '../../harness/referenceSut.ts';
import { bundledTracesDir, traceFiles } from '../../harness/trace/traceFiles.ts';
import { coverageHtml, coverageMarkdown } from '../../harness/transitionCoverage.ts';
import { standardStages } from '../../harness/verifyPlan.ts';
import { summaryTable, verify } from '../../harness/verify.ts';
import type { Command } from '../main.ts';
import { integerOption, usageError } from './options.ts';

export const command: Command = {
  summary: 'verify an implementation against the model',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        'time-budget': { type: 'string' },
        seed: { type: 'string' },
        mutant: { type: 'string' },
        quick: { type: 'boolean', default: false },
        reports: { type: 'string', default: 'reports' },
        traces: { type: 'string' },
      },
      strict: true,
    });
    const seed =
      values.seed === undefined ? randomInt(2 ** 31 - 1) : integerOption('--seed', values.seed, 0, 2 ** 31 - 1);
    const budget = integerOption('--time-budget', values['time-budget'] ?? (values.quick ? '10' : '60'), 1, 86_400);
    if (seed === null || budget === null) return usageError('verify');
    const mutant = values.mutant === undefined ? undefined : mutants[values.mutant];
    if (values.mutant !== undefined && mutant === undefined)
      return usageError('verify', `no mutant named '${values.mutant}' (known: ${Object.keys(mutants).join(', ')})`);
    const tracesDir = values.traces ?? bundledTracesDir;
    if (!existsSync(tracesDir)) return usageError('verify', `--traces: no folder ${tracesDir}`);
    const name = mutant === undefined ? 'the reference implementation' : `mutant ${values.mutant}`;
    process.stdout.write(
      `cowmap verify on ${name}: seed ${seed}, time budget ${budget} s per randomised stage${values.quick ? ' (quick)' : ''}\n`,
    );
    const tty = process.stderr.isTTY === true;
    const result = await verify(
      standardStages({ quick: values.quick, mutantName: values.mutant, volumeClass: mutant?.volumeClass }),
      {
        makeSut: () => new ReferenceSut(mutant === undefined ? {} : { volumeClass: mutant.volumeClass, name }),
        seed,
        budgetSeconds: budget,
        traceFiles: traceFiles(tracesDir),
        // Failures go under the working directory unless --traces names a folder.
        failuresDir: join(values.traces ?? 'traces', 'failures'),
        onProgress: tty ? (stage, text) => process.stderr.write(`\r\x1b[K  ${stage}: ${text}`) : undefined,
      },
    );
    if (tty) process.stderr.write('\r\x1b[K');
    process.stdout.write(`${summaryTable(result)}\n`);
    mkdirSync(values.reports, { recursive: true });
    writeFileSync(join(values.reports, 'transitions.json'), `${JSON.stringify(result.coverage, null, 2)}\n`);
    writeFileSync(join(values.reports, 'transitions.md'), coverageMarkdown(result.coverage));
    writeFileSync(join(values.reports, 'transitions.html'), coverageHtml(result.coverage));
    process.stdout.write(
      `transitions covered: ${result.coverage.covered}/${result.coverage.total} (reports in ${values.reports}/transitions.{json,md,html})\n`,
    );
    if (result.failure !== null) {
      process.stdout.write(
        `FAILED in ${result.failure.stage} after ${result.failure.seconds.toFixed(1)} s:\n${result.failure.message}\n`,
      );
      return 1;
    }
    process.stdout.write(`verified: seed ${seed}\n`);
    return 0;
  },
};
