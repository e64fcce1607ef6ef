// How a failed `cowmap` command ends: one line on stderr and an exit status, never
// a stack trace (docs/protocol.md section 2 gives the codes).
//
//   CowmapError                    "CODE: message"                              exit 1
//   storage error that escaped     "E_IO: <operation>: <errno>: <path>"         exit 1
//   usage error                    "cowmap <cmd>: <problem>" + "usage: ..."     exit 2
//                                  + "see 'cowmap <cmd> --help'"
//   anything else (a bug)          "E_INTERNAL: <message>" + how to report it   exit 1
//
// The stack of an internal error is printed only with COWMAP_DEBUG=1 in the
// environment, for whoever reports or fixes the bug.

import { CowmapError, isStorageError } from '../impl/errors.ts';
import { parseArgsProblem } from './parseCommand.ts';
import { exitCowmapError, exitUsage, formatUsageError, UsageError } from './usageError.ts';

export const debugVariable = 'COWMAP_DEBUG';

/** `E_IO: open: EROFS: /mnt/vol/lock` for a node:fs error (syscall, errno name, path). */
export function storageErrorLine(error: Error & { code: string }): string {
  const { syscall, path, dest } = error as { syscall?: unknown; path?: unknown; dest?: unknown };
  const operation = typeof syscall === 'string' ? syscall : 'i/o';
  const where = typeof path === 'string' ? path + (typeof dest === 'string' ? ` -> ${dest}` : '') : '(no path)';
  return `E_IO: ${operation}: ${error.code}: ${where}`;
}

/**
 * A CowmapError's line. An E_IO that impl/volumeParts.ts made from a node:fs error
 * ends in node's sentence ("...: ENOSPC: no space left on device, write '/v/map1'",
 * in older versions with the errno twice): when that error names its syscall and
 * path, the tail becomes ": write: ENOSPC: /v/map1", the storageErrorLine form, so
 * that every E_IO names the operation, the errno and the path the same way.
 */
export function cowmapErrorLine(error: CowmapError): string {
  const cause = error.cause;
  if (error.code === 'E_IO' && isStorageError(cause) && typeof (cause as { path?: unknown }).path === 'string') {
    for (const tail of [`: ${cause.code}: ${cause.message}`, `: ${cause.message}`]) {
      if (!error.message.endsWith(tail)) continue;
      const where = error.message.slice(0, error.message.length - tail.length);
      return `E_IO: ${where}: ${storageErrorLine(cause).slice('E_IO: '.length)}`;
    }
  }
  return `${error.code}: ${error.message}`;
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.trim() === '' ? '(no message)' : line;
}

/**
 * Writes what `error` means to stderr and returns the exit status. `usage` is the
 * failing command's usage after its name (`DIR --regions N ...`), for usage
 * errors; null when `commandName` is no command.
 */
export function reportFailure(error: unknown, commandName: string, usage: string | null): number {
  const problem = error instanceof UsageError ? error.message : parseArgsProblem(error);
  if (problem !== null) {
    process.stderr.write(formatUsageError(commandName, usage, problem));
    return exitUsage;
  }
  if (error instanceof CowmapError) {
    process.stderr.write(`${cowmapErrorLine(error)}\n`);
    return exitCowmapError;
  }
  if (isStorageError(error)) {
    process.stderr.write(`${storageErrorLine(error)}\n`);
    return exitCowmapError;
  }
  // The class goes after the message, in parentheses: a line holding "Error:" reads
  // as a crash, and scripts that look for one must not find it here.
  const kind = error instanceof Error && error.name !== 'Error' ? ` (${error.name})` : '';
  const message =
    firstLine(error instanceof Error ? error.message : String(error)).replace(/Error: /g, 'error, ') + kind;
  const lines = [`E_INTERNAL: ${commandName === '' ? 'cowmap' : `cowmap ${commandName}`}: ${message}`];
  if (process.env[debugVariable] === '1' && error instanceof Error && error.stack !== undefined) {
    lines.push(error.stack);
  } else {
    lines.push(
      `this is a bug in cowmap: please report it with the command that failed (run it again with ${debugVariable}=1 for the stack trace)`,
    );
  }
  process.stderr.write(`${lines.join('\n')}\n`);
  return exitCowmapError;
}
