// cowmap conform [--level rules|crash|failpoint|power] [--time-budget S] [--seed N] [--quick]
//                [--report FILE.json] [--junit FILE.xml] [--traces DIR] -- CMD...
// Starts the implementation with CMD, asks its features, runs every level it can
// (harness/conformance.ts) and prints the report. Exit status: 0 conforms, 1 does
// not conform, 2 bad usage or an implementation that breaks the protocol.

import { randomInt } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AdapterSut, ProtocolError } from '../../harness/adapterSut.ts';
import { formatReport, junitReport, levels, runConformance } from '../../harness/conformance.ts';
import type { Level } from '../../harness/conformance.ts';
import { TraceError } from '../../harness/trace/traceError.ts';
import { bundledTracesDir, traceFiles } from '../../harness/trace/traceFiles.ts';
import type { Command } from '../main.ts';
import { integerOption, usageError } from './options.ts';

/** Splits `options -- command` (the command's own arguments are not ours to parse). */
export function splitCommand(argv: readonly string[]): { own: string[]; command: string[] } {
  const at = argv.indexOf('--');
  return at < 0 ? { own: [...argv], command: [] } : { own: argv.slice(0, at), command: argv.slice(at + 1) };
}

export const command: Command = {
  summary: 'run the conformance suite against an implementation',
  async run(argv) {
    const { own, command: sutCommand } = splitCommand(argv);
    const { values } = parseArgs({
      args: own,
      options: {
        level: { type: 'string', default: 'power' },
        'time-budget': { type: 'string', default: '20' },
        seed: { type: 'string' },
        report: { type: 'string' },
        junit: { type: 'string' },
        traces: { type: 'string' },
        'request-timeout': { type: 'string', default: '30' },
        quick: { type: 'boolean', default: false },
        'out-dir': { type: 'string' },
      },
      strict: true,
    });
    if (sutCommand.length === 0) return usageError('conform', 'conform needs the implementation\'s command after --, e.g. cowmap conform -- npx cowmap adapter');
    if (!(levels as readonly string[]).includes(values.level)) return usageError('conform', `--level must be one of ${levels.join(', ')}`);
    const seed = values.seed === undefined ? randomInt(2 ** 31 - 1) : integerOption('--seed', values.seed, 0, 2 ** 31 - 1);
    const budget = integerOption('--time-budget', values['time-budget'], 1, 86_400);
    const timeout = integerOption('--request-timeout', values['request-timeout'], 1, 3600);
    if (seed === null || budget === null || timeout === null) return usageError('conform');
    const tracesDir = values.traces ?? bundledTracesDir;
    if (!existsSync(tracesDir)) return usageError('conform', `--traces: no folder ${tracesDir}`);
    process.stdout.write(`seed: ${seed}\n`);
    const sut = new AdapterSut(sutCommand, { requestTimeoutMs: timeout * 1000 });
    const tty = process.stderr.isTTY === true;
    try {
      const report = await runConformance({
        command: sutCommand,
        level: values.level as Level,
        seed,
        budgetSeconds: budget,
        traces: traceFiles(tracesDir),
        // Failures go under the working directory unless --out-dir or --traces say where.
        failuresDir: values['out-dir'] ?? join(values.traces ?? 'traces', 'failures'),
        sut,
        quick: values.quick,
        onProgress: tty ? (text) => process.stderr.write(`\r\x1b[K  ${text.slice(0, 100)}`) : undefined,
      });
      if (tty) process.stderr.write('\r\x1b[K');
      process.stdout.write(`${formatReport(report)}\n`);
      if (values.report !== undefined) writeFileSync(values.report, JSON.stringify(report, null, 2) + '\n');
      if (values.junit !== undefined) writeFileSync(values.junit, junitReport(report));
      return report.conforms ? 0 : 1;
    } catch (error) {
      if (tty) process.stderr.write('\r\x1b[K');
      if (error instanceof ProtocolError) {
        process.stderr.write(`E_BAD_REQUEST: the implementation broke adapter protocol 1: ${error.message}\n`);
        return 2;
      }
      if (error instanceof TraceError) {
        process.stderr.write(`${error.message}\n`);
        return 2;
      }
      throw error;
    } finally {
      sut.kill();
    }
  },
};
