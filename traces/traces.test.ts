// Every trace in traces/ is a test: each is replayed on the model here (and on the
// reference implementation by harness/referenceReplay.test.ts).

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatFailure, replayTrace } from '../harness/replay.ts';
import { readTrace } from '../harness/trace/reader.ts';

const root = fileURLToPath(new URL('.', import.meta.url));

export function traceFiles(dir = root, depth = 0): string[] {
  assert.ok(depth < 8, 'traces/ is nested too deep');
  const found: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (name === 'failures') continue; // saved by failing runs; not committed
    if (statSync(path).isDirectory()) found.push(...traceFiles(path, depth + 1));
    else if (name.endsWith('.jsonl')) found.push(path);
  }
  return found;
}

describe('every trace in traces/, on the model', () => {
  const files = traceFiles();
  it('includes the FIG. 4 trace', () => {
    assert.ok(files.some((file) => file.endsWith('fig4.jsonl')));
  });
  for (const file of files) {
    it(file.slice(root.length), async () => {
      const text = readFileSync(file, 'utf8');
      assert.match(text.split('\n').slice(1).join('\n'), /^#/m, 'a trace says in a # comment what it shows');
      const result = await replayTrace(readTrace(text, file), null);
      assert.equal(result.failure, null, result.failure === null ? '' : formatFailure(result.failure));
    });
  }
});
