// cowmap adapter [--mutant NAME]
// Serves the reference implementation (or the named mutant of it) over the
// conformance adapter protocol v1 (docs/adapter.md) on stdin and stdout, with the
// features failpoint, power-loss and torn. Logs go to stderr. Exit status: 0 when
// stdin closes, 86 at a failpoint (without answering), 2 for bad usage.

import { parseArgs } from 'node:util';
import { failpointExitCode, serveAdapter } from '../../harness/adapterServer.ts';
import { mutants } from '../../harness/mutants.ts';
import type { Command } from '../main.ts';
import { usageError } from './options.ts';

export { failpointExitCode };

export const command: Command = {
  summary: 'serve the reference implementation over the adapter protocol: adapter [--mutant NAME]',
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { mutant: { type: 'string' } },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length > 0)
      return usageError('adapter', `adapter takes no arguments, got '${positionals.join(' ')}'`);
    const mutantName = values.mutant;
    if (mutantName === undefined) return serveAdapter();
    const mutant = Object.hasOwn(mutants, mutantName) ? mutants[mutantName] : undefined;
    if (mutant === undefined)
      return usageError('adapter', `no mutant named '${mutantName}' (known: ${Object.keys(mutants).join(', ')})`);
    return serveAdapter({ volumeClass: mutant.volumeClass, name: `cowmap-reference+mutant:${mutantName}` });
  },
};
