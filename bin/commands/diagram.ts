// cowmap diagram [--markdown]: the statechart as Mermaid stateDiagram-v2,
// generated from the machine definition (with --markdown: docs/statechart.md).

import { statechartDocument, statechartMermaid } from '../../model/diagram.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/diagram.ts';

export const command = defineCommand(description, ({ values }) => {
  process.stdout.write(values.markdown ? statechartDocument() : statechartMermaid());
  return 0;
});
