// The help texts of the command line, built from the commands' descriptions
// (bin/command.ts): `cowmap --help` lists the commands, `cowmap CMD --help` (or
// `cowmap help CMD`) shows one with every option it declares.

import type { CommandDescription, OptionSpec } from './command.ts';
import { debugVariable } from './failure.ts';

const exitStatusText = [
  'exit status: 0 done; 1 a failure, printed on stderr as "CODE: message" (E_IO names the',
  'operation, the errno and the path; E_INTERNAL is a bug in cowmap); 2 bad usage,',
  `printed as "cowmap COMMAND: problem", the usage line and "see 'cowmap COMMAND --help'".`,
];
const environmentText = `environment: ${debugVariable}=1 prints the stack trace of an internal error (E_INTERNAL).`;
/** Where the help of the options starts, so that the texts line up. */
const helpColumn = 26;

/** `--name VALUE`, or `--name` for a boolean. */
export function optionSynopsis(name: string, spec: OptionSpec): string {
  return spec.type === 'boolean' ? `--${name}` : `--${name} ${spec.value ?? 'VALUE'}`;
}

function optionLine(name: string, spec: OptionSpec): string {
  const synopsis = optionSynopsis(name, spec);
  const extras = [
    ...(spec.multiple === true ? ['repeatable'] : []),
    ...(spec.default === undefined || spec.default === false ? [] : [`default ${String(spec.default)}`]),
  ];
  const text = extras.length === 0 ? spec.help : `${spec.help} (${extras.join('; ')})`;
  const gap =
    synopsis.length + 2 < helpColumn ? ' '.repeat(helpColumn - 2 - synopsis.length) : '\n'.padEnd(helpColumn + 1);
  return `  ${synopsis}${gap}${text}`;
}

/** `cowmap NAME --help`. */
export function commandHelp(description: CommandDescription): string {
  const options = Object.entries(description.options).map(([name, spec]) => optionLine(name, spec));
  const notes = description.notes ?? [];
  // A command that states its own exit statuses keeps only the environment line.
  const general = notes.some((line) => line.startsWith('exit status:')) ? [] : exitStatusText;
  return `${[
    `usage: cowmap ${description.name} ${description.usage}`,
    '',
    `${description.summary}.`,
    '',
    'options:',
    ...options,
    `  -h, --help${' '.repeat(helpColumn - 12)}this text`,
    ...(notes.length > 0 ? ['', ...notes] : []),
    '',
    ...general,
    environmentText,
  ].join('\n')}\n`;
}

/** `cowmap --help` (and a bare `cowmap`). */
export function overviewHelp(descriptions: readonly CommandDescription[]): string {
  const width = Math.max(...descriptions.map((description) => description.name.length));
  const lines = descriptions.map((description) => `  ${description.name.padEnd(width)}  ${description.summary}`);
  return `${[
    'usage: cowmap <command> [options]',
    '       cowmap <command> --help      (or cowmap help <command>): its options',
    '       cowmap --version',
    '',
    'commands:',
    ...lines,
    '',
    ...exitStatusText,
    environmentText,
  ].join('\n')}\n`;
}
