// Paths as the crash layer (harness/crash/crashStorage.ts) compares them: normalized
// lexically by node:path's posix functions, so that the volume must name each file
// one way. Ancestry is a prefix test on normalized paths, not path.relative, which
// would resolve relative paths against the working directory.

import { posix } from 'node:path';

/** Lexical normalization: drops "." and empty parts, resolves "..", drops a trailing "/". */
export function normalizePath(path: string): string {
  if (path.length === 0) throw new Error('CrashStorage: empty path');
  const normalized = posix.normalize(path);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

/** The directory holding a normalized path. */
export function parentDir(path: string): string {
  return posix.dirname(path);
}

/** Whether `ancestor` is `path` or one of its directories (both normalized). */
export function isSameOrAncestor(ancestor: string, path: string): boolean {
  if (ancestor === path) return true;
  if (ancestor === '.') return !posix.isAbsolute(path) && path !== '..' && !path.startsWith('../');
  const prefix = ancestor.endsWith('/') ? ancestor : `${ancestor}/`;
  return path.startsWith(prefix);
}

export function pathsRelated(a: string, b: string): boolean {
  return isSameOrAncestor(a, b) || isSameOrAncestor(b, a);
}

/** Where `path` is after `from` was renamed to `to` (a directory rename moves its descendants). */
export function movedPath(path: string, from: string, to: string): string {
  if (path === from) return to;
  if (from === '.' || !isSameOrAncestor(from, path)) return path;
  const prefix = from.endsWith('/') ? from : `${from}/`;
  return posix.join(to, path.slice(prefix.length));
}
