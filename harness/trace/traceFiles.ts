// The traces in a folder, recursively, sorted; traces/failures/ (saved by failing
// runs, not committed) is left out.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

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
