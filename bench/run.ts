// `make bench`: the benchmarks of issue 6, each figure a median over repeated runs
// with its spread, every ratio against a baseline measured in the same run,
// interleaved with ours. Prints a table, writes bench/results.json (with the
// machine's description) and bench/RESULTS.md. No timing is asserted: the bench
// exits 1 only when a result is wrong (bytes moved, replica content, a failure
// found by the checker), 2 on a usage error.
//
//   node --import tsx bench/run.ts [--quick] [--dir DIR] [--seed N] [--warm] [--only SECTIONS]
//
//   --quick     a smaller volume, fewer repetitions, shorter budgets (for development)
//   --dir DIR   where the temporary files go (default: the system's temp dir); its
//               file system is the one measured
//   --seed N    the seed of every random choice (default 1)
//   --warm      do not drop the page cache before each cycle contender
//   --only S    a comma-separated subset of: write,swap,cycle,checker,memory,conform
//               (`--only conform` runs only conformVsDriverRatio, about a minute)

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchChecker } from './checker.ts';
import { benchConformSpeed } from './conformSpeed.ts';
import { benchCycle, prepareCycleVolume, type CycleVolume } from './cycleCost.ts';
import { benchMemory } from './memory.ts';
import type { Check, Figure, SectionResult } from './report.ts';
import { benchSwap } from './swapCost.ts';
import { describeMachine, ensureRsync } from './system.ts';
import { benchWritePath } from './writePath.ts';

const sectionNames = ['write', 'swap', 'cycle', 'checker', 'memory', 'conform'] as const;
type SectionName = (typeof sectionNames)[number];

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, '..');

function usage(message: string): number {
  process.stderr.write(
    `bench: ${message}\nusage: node --import tsx bench/run.ts [--quick] [--dir DIR] [--seed N] [--warm] [--only ${sectionNames.join(',')}]\n`,
  );
  return 2;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

function plan(quick: boolean) {
  return quick
    ? {
        write: { regions: 64, regionSize: 4096, chunkRegions: 8, cycles: 3, warmups: 1 },
        swap: { regionCounts: [1024, 16384, 262144], regionSize: 512, repetitions: 5, warmups: 1 },
        cycle: { regions: 1024, regionSize: 65536, dirtyFraction: 0.01, repetitions: 3 },
        checker: {
          fuzzBudgetMs: 3_000,
          fuzzRepetitions: 2,
          crashesRepetitions: 2,
          explorerRegions: 3,
          explorerValues: 2,
          explorerRepetitions: 2,
          conformanceRepetitions: 1,
          traceCount: 8,
        },
        memory: { fuzzBudgetMs: 10_000, cycleRepetitions: 2 },
        conform: {
          repetitions: 4,
          secondsPerRun: 2,
          regions: 9,
          regionSize: 4096,
          conformRepetitions: 1,
          conformBudgetSeconds: 10,
        },
      }
    : {
        write: { regions: 256, regionSize: 4096, chunkRegions: 16, cycles: 8, warmups: 1 },
        swap: { regionCounts: [1024, 16384, 262144], regionSize: 512, repetitions: 15, warmups: 2 },
        cycle: { regions: 16384, regionSize: 65536, dirtyFraction: 0.01, repetitions: 5 },
        checker: {
          fuzzBudgetMs: 20_000,
          fuzzRepetitions: 3,
          crashesRepetitions: 3,
          explorerRegions: 4,
          explorerValues: 2,
          explorerRepetitions: 3,
          conformanceRepetitions: 3,
          traceCount: Infinity,
        },
        memory: { fuzzBudgetMs: 120_000, cycleRepetitions: 3 },
        conform: {
          repetitions: 9,
          secondsPerRun: 3,
          regions: 9,
          regionSize: 4096,
          conformRepetitions: 3,
          conformBudgetSeconds: 30,
        },
      };
}

/** traces/fig4.jsonl and traces/scenarios/*.jsonl, as `cowmap replay` is given them. */
async function conformanceTraces(count: number): Promise<string[]> {
  const { readdirSync } = await import('node:fs');
  const scenarios = readdirSync(join(repoRoot, 'traces', 'scenarios'))
    .filter((name) => name.endsWith('.jsonl'))
    .sort()
    .map((name) => join('traces', 'scenarios', name));
  return [join('traces', 'fig4.jsonl'), ...scenarios].slice(0, count);
}

// ------------------------------------------------------------------ output

function formatValue(value: number, unit: string): string {
  if (unit === 'ratio') return value.toFixed(2);
  if (unit === 'bytes') return `${(value / (1 << 20)).toFixed(1)} MiB`;
  if (unit === 's') return value.toFixed(3);
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(1);
}

function unitLabel(unit: string): string {
  return unit === 'bytes' ? '' : unit === 'ratio' ? 'x' : ` ${unit}`;
}

interface Row {
  key: string;
  median: string;
  range: string;
  iqr: string;
  n: string;
  target: string;
  detail: string;
}

function rowOf(figure: Figure): Row {
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

function textTable(rows: Row[]): string {
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

function markdownTable(rows: Row[]): string {
  const escapeCell = (text: string) => text.replaceAll('|', '\\|');
  const out = ['| figure | median | min..max | IQR | n | target | what |', '|---|---|---|---|---|---|---|'];
  for (const row of rows)
    out.push(
      `| \`${row.key}\` | ${row.median} | ${row.range} | ${row.iqr} | ${row.n} | ${escapeCell(row.target)} | ${escapeCell(row.detail)} |`,
    );
  return out.join('\n');
}

function describeMachineLine(machine: ReturnType<typeof describeMachine>): string {
  return (
    `${machine.cpuModel}, ${machine.cores} cores, ${(machine.memoryBytes / (1 << 30)).toFixed(1)} GiB memory, node ${machine.nodeVersion}, ${machine.os}; ` +
    `temp dir ${machine.tempDir} on ${machine.tempFileSystem} (${machine.tempMountSource}, ${machine.tempMountOptions}); ${machine.rsyncVersion ?? 'no rsync'}; ` +
    `load average at start ${machine.loadAverageAtStart.join(' ')}`
  );
}

// -------------------------------------------------------------------- main

async function main(argv: string[]): Promise<number> {
  let values: { quick: boolean; dir?: string; seed: string; warm: boolean; only?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        dir: { type: 'string' },
        seed: { type: 'string', default: '1' },
        warm: { type: 'boolean', default: false },
        only: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return usage((error as Error).message);
  }
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0)
    return usage(`--seed must be a non-negative integer, got ${values.seed}`);
  const only = values.only === undefined ? [...sectionNames] : values.only.split(',').map((name) => name.trim());
  for (const name of only)
    if (!(sectionNames as readonly string[]).includes(name)) return usage(`unknown section '${name}'`);
  const selected = new Set(only as SectionName[]);
  const quick = values.quick;
  const settings = plan(quick);
  const baseDir = resolve(values.dir ?? tmpdir());
  const root = mkdtempSync(join(baseDir, 'cowmap-bench-'));
  const startedAt = new Date();
  const started = process.hrtime.bigint();

  const rsyncVersion = selected.has('cycle') ? ensureRsync(log) : null;
  const machine = describeMachine(root);
  log(`cowmap bench${quick ? ' --quick' : ''}: ${describeMachineLine(machine)}`);
  log(`temporary files in ${root}`);
  if (machine.loadAverageAtStart[0]! > machine.cores / 2) {
    log(
      `warning: load average ${machine.loadAverageAtStart[0]} on ${machine.cores} cores: other work is running, and every figure will show it`,
    );
  }

  const sections: SectionResult[] = [];
  const crashes: Check[] = [];
  let cycleVolume: CycleVolume | null = null;
  const runSection = async (name: SectionName, body: () => SectionResult | Promise<SectionResult>) => {
    if (!selected.has(name)) return;
    log(`== ${name}`);
    try {
      sections.push(await body());
    } catch (error) {
      crashes.push({
        name: `${name}: the section ran to the end`,
        ok: false,
        detail: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
      log(`  ${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  };
  try {
    await runSection('write', () => benchWritePath({ root, seed, ...settings.write }, log));
    await runSection('swap', () => benchSwap({ root, seed, ...settings.swap }, log));
    const cycleConfig = { root, seed, ...settings.cycle, rsync: rsyncVersion !== null, cold: !values.warm };
    await runSection('cycle', () => {
      cycleVolume = prepareCycleVolume(cycleConfig, log);
      return benchCycle(cycleConfig, cycleVolume, log);
    });
    const traceFiles = await conformanceTraces(settings.checker.traceCount);
    await runSection('checker', () => benchChecker({ root, repoRoot, seed, traceFiles, ...settings.checker }, log));
    await runSection('memory', () => {
      // The cycle child runs on the cycle benchmark's volume (made here when that section did not run).
      if (cycleVolume === null && !selected.has('cycle')) cycleVolume = prepareCycleVolume(cycleConfig, log);
      return benchMemory(
        { root, repoRoot, seed, dirtyFraction: settings.cycle.dirtyFraction, ...settings.memory },
        cycleVolume,
        log,
      );
    });
    await runSection('conform', () => benchConformSpeed({ root, repoRoot, seed, ...settings.conform }, log));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }

  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const loadAverageAtEnd = loadavg().map((value) => Number(value.toFixed(2)));
  const figures = sections.flatMap((section) => section.figures);
  const checks = [...sections.flatMap((section) => section.checks), ...crashes];
  const failed = checks.filter((check) => !check.ok);
  const rows = figures.map(rowOf);

  // The table.
  process.stdout.write(
    `\ncowmap bench${quick ? ' --quick' : ''} (${seconds.toFixed(0)} s): ${describeMachineLine(machine)}\n\n`,
  );
  process.stdout.write(`${textTable(rows)}\n\n`);
  for (const figure of figures) {
    if (figure.target !== undefined && !figure.target.met)
      process.stdout.write(
        `target missed: ${figure.key} ${formatValue(figure.summary.median, figure.unit)} (${figure.target.text})${figure.why === undefined ? '' : `: ${figure.why}`}\n`,
      );
  }
  process.stdout.write('\n');
  for (const check of checks)
    process.stdout.write(`${check.ok ? 'ok  ' : 'FAIL'} ${check.name}: ${check.detail.split('\n')[0]}\n`);
  process.stdout.write(`\n${checks.length - failed.length} passed, ${failed.length} failed\n`);

  // results.json: the headline figures by key (their medians), then everything.
  const headline: Record<string, number> = {};
  for (const figure of figures) headline[figure.key] = Number(figure.summary.median.toPrecision(6));
  const results = {
    ...headline,
    ok: failed.length === 0,
    quick,
    startedAt: startedAt.toISOString(),
    seconds: Number(seconds.toFixed(1)),
    seed,
    machine: { ...machine, loadAverageAtEnd },
    figures: Object.fromEntries(
      figures.map((figure) => [
        figure.key,
        {
          label: figure.label,
          unit: figure.unit,
          ...figure.summary,
          ...(figure.against === undefined ? {} : { against: figure.against }),
          ...(figure.target === undefined ? {} : { target: figure.target.text, targetMet: figure.target.met }),
          ...(figure.detail === undefined ? {} : { detail: figure.detail }),
          ...(figure.why === undefined ? {} : { why: figure.why }),
        },
      ]),
    ),
    checks,
    notes: sections.flatMap((section) => section.notes),
    settings,
    data: Object.fromEntries(sections.map((section) => [section.section, section.data])),
  };
  writeFileSync(join(benchDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);

  const markdown = [
    '# cowmap benchmark results',
    '',
    `Generated by \`make bench\` (\`node --import tsx bench/run.ts${quick ? ' --quick' : ''}\`) on ${startedAt.toISOString()}, in ${seconds.toFixed(0)} s. ` +
      'Each figure is the median over repeated runs, with its range (min..max) and interquartile range; every ratio is taken per repetition against a baseline run interleaved with ours in the same run. ' +
      'No timing is asserted: the bench fails only when a result is wrong.',
    '',
    '## Machine',
    '',
    `- CPU: ${machine.cpuModel}, ${machine.cores} cores`,
    `- memory: ${(machine.memoryBytes / (1 << 30)).toFixed(1)} GiB`,
    `- node: ${machine.nodeVersion}; OS: ${machine.os}`,
    `- temporary files: ${machine.tempDir}, file system ${machine.tempFileSystem} on ${machine.tempMountSource} (${machine.tempMountOptions})`,
    `- rsync: ${machine.rsyncVersion ?? 'not available'}`,
    `- load average at start (1, 5, 15 min): ${machine.loadAverageAtStart.join(', ')}; at end: ${loadAverageAtEnd.join(', ')} (other work on the machine shifts every figure)`,
    '',
    '## Figures',
    '',
    markdownTable(rows),
    '',
    '## Targets',
    '',
    ...figures
      .filter((figure) => figure.target !== undefined)
      .map(
        (figure) =>
          `- \`${figure.key}\` ${formatValue(figure.summary.median, figure.unit)}${unitLabel(figure.unit)} (target ${figure.target!.text}): ${figure.target!.met ? 'met' : '**missed**'}` +
          `${figure.why === undefined ? '' : `; ${figure.why}`}`,
      ),
    '',
    '## Checks',
    '',
    ...checks.map((check) => `- ${check.ok ? 'ok' : '**FAIL**'}: ${check.name}: ${check.detail.split('\n')[0]}`),
    '',
    '## How it was measured',
    '',
    ...sections.flatMap((section) => section.notes).map((note) => `- ${note}`),
    '',
  ].join('\n');
  writeFileSync(join(benchDir, 'RESULTS.md'), markdown);
  log(`wrote ${join('bench', 'results.json')} and ${join('bench', 'RESULTS.md')}`);
  return failed.length === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
