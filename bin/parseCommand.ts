// The one place where a command's arguments are parsed: node:util's parseArgs,
// strict, from the command's declared option table (bin/command.ts). Its
// refusals become UsageErrors in words of our own ("unknown option '--x'").

import { parseArgs } from 'node:util';
import type { CommandArgs, CommandDescription, OptionTable } from './command.ts';
import { UsageError } from './usageError.ts';

/** node:util's parseArgs error as one short problem; null when `error` is not one. */
export function parseArgsProblem(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (!(error instanceof Error) || typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) return null;
  const quoted = /'([^']*)'/.exec(error.message)?.[1];
  if (quoted !== undefined) {
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option '${quoted}'`;
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument '${quoted}'`;
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const option = quoted.split(' ', 1)[0]!;
      return error.message.includes('argument missing')
        ? `${option} needs a value`
        : `${option} takes no value (${error.message.split('\n', 1)[0]!})`;
    }
  }
  return error.message.split('\n', 1)[0]!;
}

/** Splits `options -- command` (the command's own arguments are not ours to parse). */
export function splitTrailing(argv: readonly string[]): { own: string[]; trailing: string[] } {
  const at = argv.indexOf('--');
  return at < 0 ? { own: [...argv], trailing: [] } : { own: argv.slice(0, at), trailing: argv.slice(at + 1) };
}

/** `--help` or `-h` among the command's own arguments (not after a `--`, which starts another command's). */
export function asksForHelp(argv: readonly string[]): boolean {
  const { own } = splitTrailing(argv);
  return own.includes('--help') || own.includes('-h');
}

function parseWith(options: OptionTable, argv: string[], positionals: boolean) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: positionals });
  } catch (error) {
    const problem = parseArgsProblem(error);
    if (problem === null) throw error;
    throw new UsageError(problem);
  }
}

/**
 * Parses `argv` (what follows the command's name) by `description`'s table. A
 * command that forwards (record) takes the named command's options beside its
 * own, found through `lookup`.
 */
export function parseCommandArgs(
  description: CommandDescription,
  argv: readonly string[],
  lookup: (name: string) => CommandDescription | undefined,
): CommandArgs {
  let options: OptionTable = description.options;
  let trailingCommand = description.trailingCommand === true;
  let rest = [...argv];
  let leading: string[] = [];
  if (description.forwardsTo !== undefined) {
    const source = rest[0];
    const target = source === undefined || !description.forwardsTo.includes(source) ? undefined : lookup(source);
    if (target === undefined)
      throw new UsageError(`${description.name} needs one of ${description.forwardsTo.join(', ')}`);
    options = { ...target.options, ...description.options };
    trailingCommand = target.trailingCommand === true;
    leading = [rest[0]!];
    rest = rest.slice(1);
  }
  const { own, trailing } = trailingCommand ? splitTrailing(rest) : { own: rest, trailing: [] };
  const { values, positionals } = parseWith(options, own, description.positionals === true);
  return { values: values as CommandArgs['values'], positionals: [...leading, ...positionals], trailing };
}
