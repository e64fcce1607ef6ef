// Paths as the crash layer (harness/crashStorage.ts) compares them: lexically
// normalized, so that the volume must name each file one way.

/** Lexical normalization: drops "." and empty parts, resolves "..". */
export function normalizePath(path: string): string {
  if (path.length === 0) throw new Error('CrashStorage: empty path');
  const absolute = path.startsWith('/');
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
      else if (!absolute) parts.push('..');
      continue;
    }
    parts.push(part);
  }
  const joined = parts.join('/');
  if (absolute) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/** The directory holding a normalized path. */
export function parentDir(path: string): string {
  const slash = path.lastIndexOf('/');
  if (slash < 0) return '.';
  if (slash === 0) return '/';
  return path.slice(0, slash);
}

/** Whether `ancestor` is `path` or one of its directories (both normalized). */
export function isSameOrAncestor(ancestor: string, path: string): boolean {
  if (ancestor === path) return true;
  if (ancestor === '.') return !path.startsWith('/') && !path.startsWith('..');
  const prefix = ancestor.endsWith('/') ? ancestor : `${ancestor}/`;
  return path.startsWith(prefix);
}

export function pathsRelated(a: string, b: string): boolean {
  return isSameOrAncestor(a, b) || isSameOrAncestor(b, a);
}

/** Where `path` is after `from` was renamed to `to` (a directory rename moves its descendants). */
export function movedPath(path: string, from: string, to: string): string {
  if (path === from) return to;
  if (isSameOrAncestor(from, path) && from !== '.') {
    const prefix = from.endsWith('/') ? from : `${from}/`;
    return (to.endsWith('/') ? to : `${to}/`) + path.slice(prefix.length);
  }
  return path;
}
