// cowmap replay [--model-only | --mutant NAME] FILE... [-- CMD...]
// Replays traces on the model (and, without --model-only, on the reference
// implementation side by side, or on the implementation CMD starts, through the
// adapter protocol). Exit status: 0 every trace passes, 1 a trace
// fails (its file, line, step and both states are printed), 2 a trace is invalid.

import { readFileSync } from 'node:fs';
import { formatFailure, replayTrace } from '../../harness/replay.ts';
import { AdapterSut } from '../../harness/adapter/adapterSut.ts';
import { ProtocolError } from '../../harness/adapter/protocolError.ts';
import { createReferenceSut } from '../../harness/sut/referenceSut.ts';
import type { SystemUnderTest } from '../../harness/sut/systemUnderTest.ts';
import { readTrace } from '../../harness/trace/reader.ts';
import { TraceError } from '../../harness/trace/traceError.ts';
import type { Trace } from '../../harness/trace/trace.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/replay.ts';
import { mutantOption } from '../mutantOption.ts';
import { UsageError } from '../usageError.ts';

export type SutFactory = () => SystemUnderTest;

export const command = defineCommand(description, async ({ values, positionals, trailing: sutCommand }) => {
  if (positionals.length === 0) throw new UsageError('replay needs at least one trace file');
  const traces: Trace[] = [];
  for (const file of positionals) {
    try {
      traces.push(readTrace(readFileSync(file, 'utf8'), file));
    } catch (error) {
      if (error instanceof TraceError) {
        process.stderr.write(`${error.message}\n`);
        return 2;
      }
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        process.stderr.write(`E_NOT_FOUND: replay: no trace file ${file}\n`);
        return 2;
      }
      if ((error as NodeJS.ErrnoException).code === 'EISDIR') {
        process.stderr.write(`E_BAD_REQUEST: replay: ${file} is a directory, not a trace file\n`);
        return 2;
      }
      throw error;
    }
  }
  const mutant = values.mutant === undefined ? undefined : mutantOption(values.mutant);
  if (sutCommand.length > 0 && (values['model-only'] === true || mutant !== undefined))
    throw new UsageError('-- CMD goes with neither --model-only nor --mutant');
  const factory: SutFactory | null =
    values['model-only'] === true
      ? null
      : sutCommand.length > 0
        ? () => new AdapterSut(sutCommand)
        : () =>
            mutant === undefined
              ? createReferenceSut()
              : createReferenceSut({ volumeClass: mutant.volumeClass, name: `mutant ${values.mutant}` });
  let failed = 0;
  for (const trace of traces) {
    const sut = factory === null ? null : factory();
    let result: Awaited<ReturnType<typeof replayTrace>>;
    try {
      result = await replayTrace(trace, sut);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      process.stderr.write(`E_BAD_REQUEST: the implementation broke adapter protocol 1: ${error.message}\n`);
      return 2;
    }
    const side = sut === null ? 'model' : `model and ${sut.name}`;
    if (result.failure === null) {
      const branches = result.branches > 1 ? `, ${result.branches} crash branches` : '';
      process.stdout.write(
        `ok   ${trace.file} on the ${side} (${result.stats.steps} steps, ${result.stats.invariantChecks} invariant checks${branches})\n`,
      );
    } else {
      failed++;
      process.stdout.write(`FAIL ${trace.file} on the ${side}\n${formatFailure(result.failure)}\n`);
    }
  }
  if (traces.length > 1) process.stdout.write(`${traces.length - failed} passed, ${failed} failed\n`);
  return failed > 0 ? 1 : 0;
});
