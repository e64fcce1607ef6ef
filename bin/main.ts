// The cowmap command line: one file per command under bin/commands/, loaded
// only when it runs, so that `cowmap diagram` does not pay for the harness.
// Every way a command can fail ends here, in one format (bin/failure.ts): a
// CowmapError is "CODE: message" with status 1, bad usage "cowmap CMD: problem"
// and "usage: ..." with status 2, and nothing prints a stack trace unless
// COWMAP_DEBUG=1 asks for one.

import { readFileSync } from 'node:fs';
import { exitUsage, formatUsageError } from '../impl/commandLine.ts';
import { debugVariable, reportFailure } from './failure.ts';
import { commandUsages, usageOf } from './usage.ts';

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
  /** What --help says beyond the usage line, when there is more to say. */
  notes?: string[];
}

const loaders: Record<string, () => Promise<Command>> = {
  init: () => import('./commands/init.ts').then((m) => m.command),
  write: () => import('./commands/write.ts').then((m) => m.command),
  read: () => import('./commands/read.ts').then((m) => m.command),
  cycle: () => import('./commands/cycle.ts').then((m) => m.command),
  status: () => import('./commands/status.ts').then((m) => m.command),
  scrub: () => import('./commands/scrub.ts').then((m) => ({ ...m.command, notes: m.scrubNotes })),
  replay: () => import('./commands/replay.ts').then((m) => m.command),
  explore: () => import('./commands/explore.ts').then((m) => m.command),
  fuzz: () => import('./commands/fuzz.ts').then((m) => m.command),
  crashes: () => import('./commands/crashes.ts').then((m) => m.command),
  mutants: () => import('./commands/mutants.ts').then((m) => m.command),
  adapter: () => import('./commands/adapter.ts').then((m) => m.command),
  record: () => import('./commands/record.ts').then((m) => m.command),
  conform: () => import('./commands/conform.ts').then((m) => m.command),
  verify: () => import('./commands/verify.ts').then((m) => m.command),
  serve: () => import('./commands/serve.ts').then((m) => m.command),
  diagram: () => import('./commands/diagram.ts').then((m) => m.command),
};

/** Commands that print their own --help (its text is tested against their options). */
const ownHelp = new Set(['conform']);

const exitStatusText = [
  'exit status: 0 done; 1 a failure, printed on stderr as "CODE: message" (E_IO names the',
  'operation, the errno and the path; E_INTERNAL is a bug in cowmap); 2 bad usage,',
  'printed as "cowmap COMMAND: problem" and the usage line.',
  `environment: ${debugVariable}=1 prints the stack trace of an internal error (E_INTERNAL).`,
];

function usage(): string {
  const names = Object.keys(loaders);
  const lines = names.map((name) => `  ${name.padEnd(8)} ${commandUsages[name]?.summary ?? ''}: ${usageOf(name)}`);
  return `${['usage: cowmap <command> [options]', '       cowmap <command> --help', '       cowmap --version', '', 'commands:', ...lines, '', ...exitStatusText].join('\n')}\n`;
}

function commandHelp(name: string, command: Command | null): string {
  const entry = commandUsages[name];
  const notes = command?.notes ?? entry?.notes ?? [];
  // A command that states its own exit statuses keeps only the general environment line.
  const general = notes.some((line) => line.startsWith('exit status:')) ? exitStatusText.slice(-1) : exitStatusText;
  return `${[`usage: cowmap ${usageOf(name)}`, '', entry?.summary ?? '', ...(notes.length > 0 ? ['', ...notes] : []), '', ...general].join('\n')}\n`;
}

/** --help or -h among the command's own options (not after a `--`, which starts another command's). */
function asksForHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  const own = end < 0 ? argv : argv.slice(0, end);
  return own.includes('--help') || own.includes('-h');
}

function packageVersion(): string {
  const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  return String((JSON.parse(text) as { version?: unknown }).version ?? 'unknown');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(usage());
    return exitUsage;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = rest[0];
    process.stdout.write(
      topic !== undefined && Object.hasOwn(loaders, topic) && !ownHelp.has(topic) ? commandHelp(topic, null) : usage(),
    );
    return 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`cowmap ${packageVersion()}\n`);
    return 0;
  }
  const load = Object.hasOwn(loaders, name) ? loaders[name] : undefined;
  if (load === undefined) {
    process.stderr.write(formatUsageError(name, usageOf(name), `unknown command '${name}'`));
    return exitUsage;
  }
  try {
    const command = await load();
    if (!ownHelp.has(name) && asksForHelp(rest)) {
      process.stdout.write(commandHelp(name, command));
      return 0;
    }
    return await command.run(rest);
  } catch (error) {
    return reportFailure(error, name, usageOf(name));
  }
}

/**
 * Runs the command line as the `cowmap` process (bin/cowmap.js): errors that
 * escape the command's promise (an event handler's, a closed standard output)
 * end the process in the same format as the others.
 */
export async function runProcess(argv: string[]): Promise<void> {
  const name = argv[0] ?? '';
  const fail = (error: unknown): void => {
    process.exitCode = reportFailure(error, name, usageOf(name));
    process.exit();
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  // A reader that went away (`cowmap read ... | head -c 1`): say so once and stop,
  // instead of producing output nobody reads.
  process.stdout.on('error', (error: Error & { code?: string }) => {
    process.stderr.write(`E_IO: write: ${error.code ?? error.message}: standard output\n`);
    process.exit(1);
  });
  process.exitCode = await main(argv);
}
