// cowmap adapter [--mutant NAME]
// Serves the reference implementation (or the named mutant of it) over the
// conformance adapter protocol v1 (docs/adapter.md) on stdin and stdout, with the
// features failpoint, power-loss, torn and consistent (a volume opened with
// `consistent: true` keeps a `consistent:` secondary beside it and reports its image
// D in every state, docs/protocol.md section 10). Logs go to stderr. Exit status: 0
// when stdin closes, 86 at a failpoint (without answering), 2 for bad usage.

import { failpointExitCode } from '../../harness/adapter/adapterServer.ts';
import { serveAdapter } from '../../harness/adapter/serveAdapter.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/adapter.ts';
import { mutantOption } from '../mutantOption.ts';

export { failpointExitCode };

export const command = defineCommand(description, ({ values }) => {
  const mutantName = values.mutant;
  if (mutantName === undefined) return serveAdapter();
  const mutant = mutantOption(mutantName);
  return serveAdapter({ volumeClass: mutant.volumeClass, name: `cowmap-reference+mutant:${mutantName}` });
});
