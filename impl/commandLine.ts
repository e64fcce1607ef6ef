// What the volume's commands (bin/commands/init, write, read, cycle, status) share:
// argument parsing with node:util, and the exit statuses. Bad usage is printed here
// in the one format of every command (formatUsageError), with status 2; every
// other error travels up to bin/main.ts, which prints a CowmapError as
// "CODE: message" with status 1, and anything else without a stack (bin/failure.ts).

import { parseArgs } from 'node:util';
import { NodeStorage } from './nodeStorage.ts';
import { ReplicatedVolume } from './replicatedVolume.ts';

export const exitCowmapError = 1;
export const exitUsage = 2;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type OptionSpec = Record<string, { type: 'string' | 'boolean' }>;
export type ParsedValues = Record<string, string | boolean | undefined>;

/** Parses strictly: unknown options and missing values are usage errors. */
export function parseCommandLine(argv: string[], options: OptionSpec): { values: ParsedValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    return { values: values as ParsedValues, positionals };
  } catch (error) {
    if (error instanceof TypeError && typeof (error as { code?: unknown }).code === 'string')
      throw new UsageError(error.message);
    throw error;
  }
}

/** The one positional argument, the volume directory. */
export function volumeDirArgument(positionals: string[]): string {
  if (positionals.length !== 1)
    throw new UsageError(`expected one volume directory, got ${positionals.length} arguments`);
  if (positionals[0] === '') throw new UsageError('the volume directory is an empty string');
  return positionals[0]!;
}

export function stringOption(values: ParsedValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A non-negative decimal integer option; undefined when absent. */
export function integerOption(values: ParsedValues, name: string): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text)))
    throw new UsageError(`--${name} must be a non-negative integer, got '${text}'`);
  return Number(text);
}

export function requiredIntegerOption(values: ParsedValues, name: string): number {
  const value = integerOption(values, name);
  if (value === undefined) throw new UsageError(`--${name} is required`);
  return value;
}

/**
 * The one format of a usage error, for every command: what is wrong, then how the
 * command is called. `usage` starts with the command's name.
 */
export function formatUsageError(commandName: string, usage: string, problem: string): string {
  // One line for the problem (node:util's messages add hints on lines of their own).
  return `cowmap ${commandName}: ${problem.replace(/\s*\n\s*/g, ' ')}\nusage: cowmap ${usage}\n`;
}

/** Runs a command body; a usage error is printed with `usage` (exit 2), any other error travels up. */
export async function runCommand(usage: string, body: () => Promise<number> | number): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(formatUsageError(usage.split(' ', 1)[0]!, usage, error.message));
      return exitUsage;
    }
    throw error;
  }
}

/**
 * Opens the volume in `dir` on the file system (recovery included), runs `body`,
 * closes it. `readOnly` opens it without writing anything (OpenOptions.readOnly):
 * what status and read use, so that they work on a read-only file system.
 */
export async function withVolume<T>(
  dir: string,
  body: (volume: ReplicatedVolume) => Promise<T> | T,
  options: { readOnly?: boolean } = {},
): Promise<T> {
  const volume = ReplicatedVolume.open(new NodeStorage(), dir, options.readOnly === true ? { readOnly: true } : {});
  try {
    return await body(volume);
  } finally {
    volume.close();
  }
}

/** Writes bytes to stdout and waits until the stream has taken them. */
export function writeStdout(bytes: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(bytes, (error) => (error ? reject(error) : resolve()));
  });
}

/** A list of regions for people: the first `shownMax`, then a count of the rest. */
export function summarizeRegions(regions: readonly number[], shownMax = 64): string {
  if (regions.length === 0) return '(none)';
  const shown = regions.slice(0, shownMax).join(' ');
  return regions.length > shownMax ? `${shown} ... (${regions.length - shownMax} more)` : shown;
}
