// cowmap replay [--model-only | --mutant NAME] FILE... [-- CMD...]
// Replays traces on the model (and, without --model-only, on the reference
// implementation side by side, or on the implementation CMD starts, through the
// adapter protocol). Exit status: 0 every trace passes, 1 a trace
// fails (its file, line, step and both states are printed), 2 a trace is invalid.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatFailure, replayTrace } from '../../harness/replay.ts';
import { AdapterSut, ProtocolError } from '../../harness/adapterSut.ts';
import { mutants } from '../../harness/mutants.ts';
import { createReferenceSut } from '../../harness/referenceSut.ts';
import type { SystemUnderTest } from '../../harness/sut.ts';
import { readTrace } from '../../harness/trace/reader.ts';
import { TraceError } from '../../harness/trace/traceError.ts';
import type { Trace } from '../../harness/trace/trace.ts';
import type { Command } from '../main.ts';
import { splitCommand } from './conform.ts';
import { usageError } from './options.ts';

export type SutFactory = () => SystemUnderTest;

export const command: Command = {
  summary: 'replay traces',
  async run(argv) {
    const { own, command: sutCommand } = splitCommand(argv);
    const { values, positionals } = parseArgs({
      args: own,
      options: { 'model-only': { type: 'boolean', default: false }, mutant: { type: 'string' } },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length === 0) return usageError('replay', 'replay needs at least one trace file');
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
    if (values.mutant !== undefined && mutants[values.mutant] === undefined) {
      return usageError('replay', `no mutant named '${values.mutant}' (known: ${Object.keys(mutants).join(', ')})`);
    }
    const mutant = values.mutant === undefined ? undefined : mutants[values.mutant];
    if (sutCommand.length > 0 && (values['model-only'] || mutant !== undefined))
      return usageError('replay', '-- CMD goes with neither --model-only nor --mutant');
    const factory: SutFactory | null = values['model-only']
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
  },
};
