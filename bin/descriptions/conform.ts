import { defaultBudgetSeconds } from '../../harness/conformance/budget.ts';
import type { Command, CommandDescription } from '../command.ts';

export const description = {
  name: 'conform',
  summary: 'run the conformance suite against an implementation',
  usage: '[--up-to L | --level L] [--check ID] [--time-budget S] [--seed N] [--quick] [--out-dir DIR] [...] -- CMD...',
  trailingCommand: true,
  options: {
    'up-to': {
      type: 'string',
      value: 'LEVEL',
      help: 'the levels up to LEVEL (rules, crash, failpoint, power, consistent; default power, which ends with the optional level consistent)',
    },
    level: { type: 'string', value: 'LEVEL', help: 'only LEVEL' },
    check: {
      type: 'string',
      value: 'ID',
      multiple: true,
      help: 'only this check (e.g. rules/protocol, crash/fast-check)',
    },
    'time-budget': { type: 'string', value: 'S', help: `the whole run, in seconds (default ${defaultBudgetSeconds})` },
    seed: { type: 'string', value: 'N', help: 'the seed of every generated check (default random, printed)' },
    path: {
      type: 'string',
      value: 'P',
      help: 'with --seed, --check, --regions, --region-size: replay one fast-check counterexample',
    },
    regions: { type: 'string', value: 'N', help: 'with --region-size: run the generated checks on this geometry only' },
    'region-size': { type: 'string', value: 'B', help: 'region size in bytes, a multiple of 512' },
    trace: { type: 'string', value: 'FILE', multiple: true, help: 'a trace to run beside the bundled ones' },
    traces: { type: 'string', value: 'DIR', help: "the bundled traces' folder (default cowmap's own)" },
    'keep-going': { type: 'boolean', default: false, help: 'go on after a failure' },
    'strict-messages': {
      type: 'boolean',
      default: false,
      help: 'fail on a rejection message that does not name the operation, region and phase',
    },
    quick: { type: 'boolean', default: false, help: 'small path models and whole cheap checks (for CI smoke runs)' },
    transcript: { type: 'string', value: 'FILE', help: 'every request and answer, in order' },
    report: { type: 'string', value: 'FILE', help: 'the JSON report' },
    junit: { type: 'string', value: 'FILE', help: 'the JUnit XML report' },
    reports: { type: 'string', value: 'DIR', help: 'the transition coverage (JSON, Markdown, HTML)' },
    'out-dir': { type: 'string', value: 'DIR', help: 'where failing traces are saved (default traces/failures)' },
    'request-timeout': { type: 'string', value: 'S', default: '30', help: "an answer's deadline, in seconds" },
  },
  notes: [
    'Runs the conformance suite against the implementation that CMD starts (adapter',
    'protocol 1, docs/adapter.md; see docs/conformance.md).',
    'exit status: 0 conforms, 1 does not, 2 bad usage or an implementation that breaks the',
    'protocol, 130/143 interrupted. The reports are written in every case.',
  ],
  load: (): Promise<Command> => import('../commands/conform.ts').then((m) => m.command),
} as const satisfies CommandDescription;
