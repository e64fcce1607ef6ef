// cowmap verify [--time-budget S] [--seed N] [--mutant NAME] [--quick] [--reports DIR]
// The main job: every stage of harness/verify.ts against the reference
// implementation (or a named mutant), the summary table, the transition-coverage
// reports, and exit 1 on any failure.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { ReferenceSut } from '../../harness/sut/referenceSut.ts';
import { bundledTracesDir, traceFiles } from '../../harness/trace/traceFiles.ts';
import { coverageHtml, coverageMarkdown } from '../../harness/transitionCoverage.ts';
import { standardStages } from '../../harness/verifyPlan.ts';
import { summaryTable, verify } from '../../harness/verify.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/verify.ts';
import { budgetSecondsBounds, integerOption, seedBounds } from '../integerOption.ts';
import { mutantOption } from '../mutantOption.ts';
import { UsageError } from '../usageError.ts';

export const command = defineCommand(description, async ({ values }) => {
  const seed = values.seed === undefined ? randomInt(seedBounds.max) : integerOption('seed', values.seed, seedBounds);
  const budget = integerOption(
    'time-budget',
    values['time-budget'] ?? (values.quick ? '10' : '60'),
    budgetSecondsBounds,
  );
  const mutant = values.mutant === undefined ? undefined : mutantOption(values.mutant);
  const tracesDir = values.traces ?? bundledTracesDir;
  if (!existsSync(tracesDir)) throw new UsageError(`--traces: no folder ${tracesDir}`);
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
});
