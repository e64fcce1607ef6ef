// What a `cowmap` command is: a description (name, summary, usage line, the
// node:util parseArgs option table with each option's help, notes for --help)
// that is light to load, and a run function, loaded only when the command runs
// (so that `cowmap diagram` or `cowmap --help` does not load the harness).
// bin/parseCommand.ts parses every command's arguments from its table, strictly,
// so that every option a command reads is declared, and shown by --help.

import type { parseArgs } from 'node:util';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly default?: string | boolean;
  /** The value's name in help and usage (string options): N, DIR, S, ... */
  readonly value?: string;
  /** What the option does, in a line for --help (the default is added from `default`). */
  readonly help: string;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** The parsed values of `T`, typed as node:util types them (options with a default always present). */
export type Values<T extends OptionTable> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: true }>
>['values'];

export interface CommandArgs<T extends OptionTable = OptionTable> {
  readonly values: Values<T>;
  readonly positionals: string[];
  /** What follows `--` (an implementation's command), for commands with `trailingCommand`. */
  readonly trailing: string[];
}

export interface CommandDescription<T extends OptionTable = OptionTable> {
  readonly name: string;
  /** What the command does, in a few words. */
  readonly summary: string;
  /** How it is called, after `cowmap NAME ` (the usage line of --help and of usage errors). */
  readonly usage: string;
  readonly options: T;
  /** Positional arguments are accepted (the command checks how many). */
  readonly positionals?: boolean;
  /** `-- CMD...` ends the command's own options: the rest is an implementation's command. */
  readonly trailingCommand?: boolean;
  /** The first argument names one of these commands, whose options this one also takes (record). */
  readonly forwardsTo?: readonly string[];
  /** What --help says beyond the options. */
  readonly notes?: readonly string[];
  /** The implementation, loaded when the command runs. */
  readonly load: () => Promise<Command>;
}

export interface Command<T extends OptionTable = OptionTable> extends CommandDescription<T> {
  run(args: CommandArgs<T>): Promise<number>;
}

/** A command from its description and its run function (the module bin/commands/NAME.ts exports). */
export function defineCommand<T extends OptionTable>(
  description: CommandDescription<T>,
  run: (args: CommandArgs<T>) => Promise<number> | number,
): Command<T> {
  return { ...description, run: async (args) => run(args) };
}
