// cowmap diagram [--markdown]: the statechart as Mermaid stateDiagram-v2,
// generated from the machine definition (with --markdown: docs/statechart.md).

import { parseArgs } from 'node:util';
import { statechartDocument, statechartMermaid } from '../../model/diagram.ts';
import type { Command } from '../main.ts';

export const command: Command = {
  summary: 'print the statechart as Mermaid',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { markdown: { type: 'boolean', default: false } },
      strict: true,
    });
    process.stdout.write(values.markdown ? statechartDocument() : statechartMermaid());
    return 0;
  },
};
