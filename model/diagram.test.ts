import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { statechartDocument, statechartMermaid } from './diagram.ts';
import { allTransitions } from './transitions.ts';

describe('the statechart diagram', () => {
  it('is generated from the machine: every state and every transition appears', () => {
    const mermaid = statechartMermaid();
    assert.match(mermaid, /^stateDiagram-v2\n/);
    for (const state of [
      'idle',
      'replicating_sending',
      'replicating_drained',
      'crashed_whileIdle',
      'crashed_whileReplicating',
    ]) {
      assert.ok(mermaid.includes(`as ${state}`), state);
    }
    const edges = mermaid.split('\n').filter((line) => line.includes(' --> ') && !line.includes('[*]'));
    assert.equal(edges.length, allTransitions().length);
  });

  it('docs/statechart.md is not stale (regenerate: npx cowmap diagram --markdown > docs/statechart.md)', () => {
    const onDisk = readFileSync(new URL('../docs/statechart.md', import.meta.url), 'utf8');
    assert.equal(onDisk, statechartDocument());
  });
});
