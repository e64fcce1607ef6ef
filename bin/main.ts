// The cowmap command line. Each command is a light description (bin/descriptions/,
// listed in bin/commandList.ts) and an implementation under bin/commands/, loaded
// only when it runs, so that `cowmap diagram` or `cowmap --help` does not pay for
// the harness. The help texts are built from the descriptions (bin/help.ts), the
// arguments parsed from them in one place (bin/parseCommand.ts). Every way a
// command can fail ends here, in one format (bin/failure.ts): a CowmapError is
// "CODE: message" with status 1, bad usage "cowmap CMD: problem", the usage line
// and a pointer to --help, with status 2, and nothing prints a stack trace unless
// COWMAP_DEBUG=1 asks for one.

import { readFileSync } from 'node:fs';
import { commandList, commandNamed } from './commandList.ts';
import { reportFailure } from './failure.ts';
import { commandHelp, overviewHelp } from './help.ts';
import { asksForHelp, parseCommandArgs } from './parseCommand.ts';
import { UsageError } from './usageError.ts';

function packageVersion(): string {
  const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  return String((JSON.parse(text) as { version?: unknown }).version ?? 'unknown');
}

/** `cowmap help [CMD]` and `cowmap --help [CMD]`: to stdout, status 0 (2 for a topic that is no command). */
function help(topic: string | undefined): number {
  if (topic === undefined) {
    process.stdout.write(overviewHelp(commandList));
    return 0;
  }
  const description = commandNamed(topic);
  if (description === undefined) return reportFailure(new UsageError(`unknown command '${topic}'`), topic, null);
  process.stdout.write(commandHelp(description));
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') return help(rest[0]);
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`cowmap ${packageVersion()}\n`);
    return 0;
  }
  const description = commandNamed(name);
  if (description === undefined) return reportFailure(new UsageError(`unknown command '${name}'`), name, null);
  if (asksForHelp(rest)) return help(name);
  try {
    const args = parseCommandArgs(description, rest, commandNamed);
    const command = await description.load();
    return await command.run(args);
  } catch (error) {
    return reportFailure(error, name, description.usage);
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
    process.exitCode = reportFailure(error, name, commandNamed(name)?.usage ?? null);
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
