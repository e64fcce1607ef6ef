// The traces in a folder, recursively, sorted; traces/failures/ (saved by failing
// runs, not committed) is left out.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The traces that come with cowmap (the repository's traces/ folder), found from
 * this file rather than from the working directory, so that `npx cowmap conform`
 * works from the user's own project.
 */
export const bundledTracesDir = fileURLToPath(new URL('../../traces', import.meta.url));

export const traceFolderDepthMax = 8;

export function traceFiles(dir: string, depth = 0): string[] {
  if (depth > traceFolderDepthMax) throw new Error(`${dir}: trace folders nested deeper than ${traceFolderDepthMax}`);
  const found: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (name === 'failures') continue;
    if (statSync(path).isDirectory()) found.push(...traceFiles(path, depth + 1));
    else if (name.endsWith('.jsonl')) found.push(path);
  }
  return found;
}
