// cowmap record fuzz|explore|conform --out FILE [that command's options]
// Writes a v1 trace from a run: the shortest failing sequence of a fast-check
// seed and path, an explorer counterexample, or a conformance failure. It runs
// the command with a scratch folder for failures and keeps the trace it wrote.
// Exit status: 0 a trace was recorded, 1 the run found nothing to record, 2 bad usage.

import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from '../main.ts';
import { usageError } from './options.ts';

const sources = ['fuzz', 'explore', 'conform'] as const;

function takeOut(argv: readonly string[]): { out: string | null; rest: string[] } {
  const rest = [...argv];
  const at = rest.indexOf('--out');
  const end = rest.indexOf('--');
  if (at < 0 || (end >= 0 && at > end) || rest[at + 1] === undefined) return { out: null, rest };
  const out = rest[at + 1]!;
  rest.splice(at, 2);
  return { out, rest };
}

export const command: Command = {
  summary: 'write a v1 trace from a run',
  async run(argv) {
    const [source, ...others] = argv;
    if (source === undefined || !(sources as readonly string[]).includes(source))
      return usageError('record', `record needs one of ${sources.join(', ')}`);
    const { out, rest } = takeOut(others);
    if (out === null) return usageError('record', 'record needs --out FILE');
    const scratch = mkdtempSync(join(tmpdir(), 'cowmap-record-'));
    try {
      let status: number;
      if (source === 'fuzz') {
        const { command: fuzz } = await import('./fuzz.ts');
        status = await fuzz.run([...rest, '--out-dir', scratch]);
      } else if (source === 'explore') {
        const { command: explore } = await import('./explore.ts');
        status = await explore.run([...rest, '--out', join(scratch, 'explore-counterexample.jsonl')]);
      } else {
        const { command: conform } = await import('./conform.ts');
        const end = rest.indexOf('--');
        const own = end < 0 ? rest : rest.slice(0, end);
        const sut = end < 0 ? [] : rest.slice(end);
        status = await conform.run([...own, '--out-dir', scratch, ...sut]);
      }
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
  },
};
