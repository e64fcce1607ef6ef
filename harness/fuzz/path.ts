// The path a fuzz run prints for its counterexample: fast-check's shrink path,
// then `@` and the commands' replayPath (which commands ran at each shrink step),
// without which a shrunk counterexample of fc.commands cannot be walked to.

/** Splits a printed path into fast-check's path and the commands' replayPath. */
export function parseFuzzPath(path: string): { path: string; replayPath: string | undefined } {
  const at = path.indexOf('@');
  const fastCheckPath = at < 0 ? path : path.slice(0, at);
  if (!/^\d+(:\d+)*$/.test(fastCheckPath))
    throw new RangeError(
      `fuzz: '${path}' is not a path printed by cowmap fuzz (digits and colons, then @ and the replay path)`,
    );
  // A shrunk counterexample of fc.commands cannot be walked to without knowing which commands ran.
  if (at < 0 && fastCheckPath.includes(':'))
    throw new RangeError(`fuzz: the path '${path}' lacks its replay part ('@' and what follows, as printed)`);
  return { path: fastCheckPath, replayPath: at < 0 ? undefined : path.slice(at + 1) };
}

/** The commands' replayPath, from the counterexample as fast-check prints it (`... /*replayPath="..."*\/`). */
export function replayPathOf(counterexample: unknown): string | null {
  const match = /\/\*replayPath=("(?:[^"\\]|\\.)*")\*\/\s*$/.exec(String(counterexample));
  return match === null ? null : (JSON.parse(match[1]!) as string);
}
