import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'diagram',
  summary: 'print the statechart as Mermaid stateDiagram-v2',
  usage: '[--markdown]',
  options: {
    markdown: { type: 'boolean', default: false, help: 'the whole of docs/statechart.md' },
  },
  load: (): Promise<Command> => import('../commands/diagram.ts').then((m) => m.command),
} as const satisfies CommandDescription;
