import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'write',
  summary: 'write a region or a byte range',
  usage: 'DIR --region R --label TEXT | --offset O [--file F]',
  positionals: true,
  options: {
    region: { type: 'string', value: 'R', help: 'the region to write, with --label' },
    label: { type: 'string', value: 'TEXT', help: "the region's content: TEXT's bytes, then zeros" },
    offset: { type: 'string', value: 'O', help: 'write bytes at this byte offset of the volume' },
    file: { type: 'string', value: 'F', help: 'with --offset: the bytes of F (default standard input)' },
  },
  notes: [
    'With --offset the bytes come from F, or from standard input without --file, and go to',
    'the volume a piece at a time. F missing: E_NOT_FOUND; F a directory: E_BAD_REQUEST;',
    'more bytes than fit from O to the end of the volume: E_RANGE (a regular file is',
    'refused before anything is written; standard input when the excess arrives).',
  ],
  load: (): Promise<Command> => import('../commands/write.ts').then((m) => m.command),
} as const satisfies CommandDescription;
