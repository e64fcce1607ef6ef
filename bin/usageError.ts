// Bad usage of a `cowmap` command, in the one format of every command:
//
//   cowmap CMD: problem
//   usage: cowmap CMD <its usage line>
//   see 'cowmap CMD --help'
//
// with exit status 2. bin/failure.ts prints it; anything in a command may throw it.

export const exitCowmapError = 1;
export const exitUsage = 2;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * The text of a usage error of `commandName`. `usage` is the command's usage
 * after its name, or null for a name that is no command (the pointer is then
 * to the listing of commands).
 */
export function formatUsageError(commandName: string, usage: string | null, problem: string): string {
  // One line for the problem (node:util's messages add hints on lines of their own).
  const line = problem.replace(/\s*\n\s*/g, ' ');
  if (usage === null) return `cowmap ${commandName}: ${line}\nusage: cowmap <command> [options]\nsee 'cowmap --help'\n`;
  return `cowmap ${commandName}: ${line}\nusage: cowmap ${commandName} ${usage}\nsee 'cowmap ${commandName} --help'\n`;
}
