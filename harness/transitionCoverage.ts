// Transition coverage: which statechart transitions (by their stable ids) were
// taken while driving an implementation, as a JSON report, a Markdown table and
// an HTML page that draws the statechart, state by state, with every transition
// marked exercised or not. The gate fails naming each transition never taken.

import type { AnyStateNode } from 'xstate';
import { replicationMachine } from '../model/machine.ts';
import { allTransitions } from '../model/transitions.ts';
import type { TransitionInfo } from '../model/transitions.ts';

export interface TransitionCoverage {
  readonly total: number;
  readonly covered: number;
  readonly transitions: readonly {
    readonly id: string;
    readonly source: string;
    readonly targets: readonly string[];
    readonly result: string;
    readonly hits: number;
  }[];
  readonly missing: readonly string[];
}

export function transitionCoverage(hits: ReadonlyMap<string, number>): TransitionCoverage {
  const transitions = allTransitions().map((info) => ({
    id: info.id,
    source: info.source,
    targets: info.targets,
    result: info.rejects ?? 'accepted',
    hits: hits.get(info.id) ?? 0,
  }));
  const missing = transitions.filter((t) => t.hits === 0).map((t) => t.id);
  return { total: transitions.length, covered: transitions.length - missing.length, transitions, missing };
}

/** The gate: null when every transition was taken, else a message naming each one that was not. */
export function coverageGate(coverage: TransitionCoverage): string | null {
  if (coverage.missing.length === 0) return null;
  const missing = coverage.missing.map((id) => `  - ${id}`).join('\n');
  return `transition coverage gate: ${coverage.missing.length} of ${coverage.total} transitions never exercised:\n${missing}`;
}

export function coverageMarkdown(coverage: TransitionCoverage): string {
  const rows = coverage.transitions.map(
    (t) =>
      `| \`${t.id}\` | ${t.targets.length === 0 ? '(stays)' : t.targets.join(', ')} | ${t.result} | ${t.hits === 0 ? '**never**' : t.hits} |`,
  );
  return [
    '# Transition coverage',
    '',
    `transitions covered: ${coverage.covered}/${coverage.total}`,
    '',
    '| transition | target | result | times taken |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function statePath(node: AnyStateNode): string {
  return node.path.length === 0 ? node.machine.id : node.path.join('.');
}

function stateBox(
  node: AnyStateNode,
  bySource: Map<string, TransitionCoverage['transitions'][number][]>,
  depthMax: number,
): string {
  if (depthMax < 0) throw new Error('coverage: the statechart is nested deeper than expected');
  const path = statePath(node);
  const rows = (bySource.get(path) ?? []).map((t) => {
    const mark = t.hits === 0 ? 'missed' : 'taken';
    const event = t.id.slice(path.length + 1);
    const targets = escapeHtml(t.targets.length === 0 ? '(stays)' : t.targets.join(', '));
    const hits = t.hits === 0 ? 'never taken' : `${t.hits}&times;`;
    return `<li class="${mark}"><span class="event">${escapeHtml(event)}</span> &rarr; ${targets} <span class="hits">${hits}</span></li>`;
  });
  const children = Object.values(node.states).map((child) => stateBox(child, bySource, depthMax - 1));
  const title = node.path.length === 0 ? `machine ${escapeHtml(node.machine.id)}` : escapeHtml(node.key);
  return `<section class="state"><h3>${title}</h3>${rows.length > 0 ? `<ul>${rows.join('')}</ul>` : ''}${children.join('')}</section>`;
}

/** A self-contained page: the statechart's states as nested boxes, each transition green (taken) or red (never). */
/** The page's note on where its transitions come from. */
const generatedFrom = 'Generated from the statechart <code>model/machine.ts</code>; each transition by its stable id.';

export function coverageHtml(coverage: TransitionCoverage, title = 'cowmap transition coverage'): string {
  const bySource = new Map<string, TransitionCoverage['transitions'][number][]>();
  for (const t of coverage.transitions) {
    const list = bySource.get(t.source) ?? [];
    list.push(t);
    bySource.set(t.source, list);
  }
  const missing =
    coverage.missing.length === 0
      ? '<p class="ok">Every transition was exercised.</p>'
      : `<p class="bad">Never exercised:</p><ul>${coverage.missing.map((id) => `<li class="missed">${escapeHtml(id)}</li>`).join('')}</ul>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
.state { border: 1px solid #999; border-radius: 8px; padding: 0.4em 0.8em; margin: 0.6em 0; background: #fafafa; }
.state .state { background: #fff; }
h3 { margin: 0.2em 0; font-size: 15px; }
ul { margin: 0.2em 0 0.4em; padding-left: 1.2em; }
li.taken { color: #176b1f; }
li.missed { color: #b00020; font-weight: bold; }
li.taken::marker { content: "\\2714  "; }
li.missed::marker { content: "\\2718  "; }
.event { font-family: ui-monospace, monospace; }
.hits { color: #777; font-weight: normal; }
.ok { color: #176b1f; } .bad { color: #b00020; }
</style></head><body>
<h1>${escapeHtml(title)}</h1>
<p>transitions covered: <strong>${coverage.covered}/${coverage.total}</strong>. ${generatedFrom}</p>
${missing}
${stateBox(replicationMachine.root, bySource, 16)}
</body></html>
`;
}

/** Merges hit counts. */
export function addHits(into: Map<string, number>, ids: Iterable<string>, times = 1): void {
  for (const id of ids) into.set(id, (into.get(id) ?? 0) + times);
}

export type { TransitionInfo };
