// The figures as table rows: the text table `make bench` prints and the Markdown
// one of bench/RESULTS.md.

import type { Figure } from './report.ts';
import { mib } from './units.ts';

export function formatValue(value: number, unit: string): string {
  if (unit === 'ratio') return value.toFixed(2);
  if (unit === 'bytes') return mib(value);
  if (unit === 's') return value.toFixed(3);
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(1);
}

export function unitLabel(unit: string): string {
  return unit === 'bytes' ? '' : unit === 'ratio' ? 'x' : ` ${unit}`;
}

export interface Row {
  key: string;
  median: string;
  range: string;
  iqr: string;
  n: string;
  target: string;
  detail: string;
}

export function rowOf(figure: Figure): Row {
  const { summary, unit } = figure;
  const f = (value: number) => formatValue(value, unit);
  return {
    key: figure.key,
    median: `${f(summary.median)}${unitLabel(unit)}`,
    range: `${f(summary.min)}..${f(summary.max)}`,
    iqr: `${f(summary.q1)}..${f(summary.q3)}`,
    n: String(summary.count),
    target: figure.target === undefined ? '' : `${figure.target.text} ${figure.target.met ? 'MET' : 'MISSED'}`,
    detail: [figure.label, figure.against === undefined ? '' : `vs ${figure.against}`, figure.detail ?? '']
      .filter((part) => part !== '')
      .join('; '),
  };
}

const columns: [keyof Row, string][] = [
  ['key', 'figure'],
  ['median', 'median'],
  ['range', 'min..max'],
  ['iqr', 'IQR'],
  ['n', 'n'],
  ['target', 'target'],
];

export function textTable(rows: Row[]): string {
  const widths = columns.map(([field, title]) => Math.max(title.length, ...rows.map((row) => row[field].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, index) => cell.padEnd(widths[index]!))
      .join('  ')
      .trimEnd();
  const out = [line(columns.map(([, title]) => title)), line(widths.map((width) => '-'.repeat(width)))];
  for (const row of rows) {
    out.push(line(columns.map(([field]) => row[field])));
    out.push(`    ${row.detail}`);
  }
  return out.join('\n');
}

export function markdownTable(rows: Row[]): string {
  const escapeCell = (text: string) => text.replaceAll('|', '\\|');
  const out = ['| figure | median | min..max | IQR | n | target | what |', '|---|---|---|---|---|---|---|'];
  for (const row of rows) {
    const cells = [
      `\`${row.key}\``,
      row.median,
      row.range,
      row.iqr,
      row.n,
      escapeCell(row.target),
      escapeCell(row.detail),
    ];
    out.push(`| ${cells.join(' | ')} |`);
  }
  return out.join('\n');
}
