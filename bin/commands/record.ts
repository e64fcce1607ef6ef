// cowmap record fuzz|explore|conform --out FILE [that command's options]
// Writes a v1 trace from a run: the shortest failing sequence of a fast-check
// seed and path, an explorer counterexample, or a conformance failure. It runs
// the command with a scratch folder for failures and keeps the trace it wrote.
// The options of the command it runs are parsed with its own (bin/parseCommand.ts).
// Exit status: 0 a trace was recorded, 1 the run found nothing to record, 2 bad usage.

import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandArgs } from '../command.ts';
import { defineCommand } from '../command.ts';
import { commandNamed } from '../commandList.ts';
import { description } from '../descriptions/record.ts';
import { UsageError } from '../usageError.ts';
import { requiredOption } from '../volume.ts';

/** The values the source command runs with: its failures (or explore's counterexample) go to `scratch`. */
function sourceValues(source: string, values: CommandArgs['values'], scratch: string): CommandArgs['values'] {
  const { out: _destination, ...own } = values;
  if (source === 'explore') return { ...own, out: join(scratch, 'explore-counterexample.jsonl') };
  return { ...own, 'out-dir': scratch };
}

export const command = defineCommand(description, async ({ values, positionals, trailing }) => {
  const [source, ...extra] = positionals;
  const target = source === undefined ? undefined : commandNamed(source);
  if (source === undefined || target === undefined) throw new UsageError('record needs fuzz, explore or conform');
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const out = requiredOption('out', values.out);
  const scratch = mkdtempSync(join(tmpdir(), 'cowmap-record-'));
  try {
    const sourceCommand = await target.load();
    const status = await sourceCommand.run({
      values: sourceValues(source, values, scratch),
      positionals: [],
      trailing,
    });
    if (status === 2) return 2;
    const written = readdirSync(scratch)
      .filter((name) => name.endsWith('.jsonl'))
      .sort();
    if (written.length === 0) {
      process.stdout.write(`record: the ${source} run found no failure; nothing recorded\n`);
      return 1;
    }
    copyFileSync(join(scratch, written[0]!), out);
    process.stdout.write(`recorded: ${out} (replay: npx cowmap replay ${out})\n`);
    return 0;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
