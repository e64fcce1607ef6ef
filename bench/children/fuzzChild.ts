// A child process for the memory benchmark: runFuzz on the reference
// implementation over the crash layer for a time budget, then one JSON line with
// its counts and its own peak resident memory (process.resourceUsage().maxRSS).
//
//   node --import tsx bench/children/fuzzChild.ts BUDGET_MS SEED FAILURES_DIR

import { fuzzDefaults } from '../../harness/fuzz/options.ts';
import { runFuzz } from '../../harness/fuzz/run.ts';
import { ReferenceSut } from '../../harness/sut/referenceSut.ts';

const [budgetText, seedText, failuresDir] = process.argv.slice(2);
const budgetMs = Number(budgetText);
const seed = Number(seedText);
if (!Number.isInteger(budgetMs) || budgetMs < 1 || !Number.isInteger(seed) || failuresDir === undefined) {
  process.stderr.write('usage: fuzzChild.ts BUDGET_MS SEED FAILURES_DIR\n');
  process.exit(2);
}
const result = await runFuzz({
  seed,
  timeBudgetMs: budgetMs,
  regions: fuzzDefaults.regions,
  labels: fuzzDefaults.labels,
  commandsMax: fuzzDefaults.commandsMax,
  makeSut: () => new ReferenceSut(),
  failuresDir,
});
process.stdout.write(
  `${JSON.stringify({
    ok: result.failure === null,
    failure: result.failure === null ? null : result.failure.message.split('\n')[0],
    steps: result.steps,
    runs: result.runs,
    seconds: result.seconds,
    // maxRSS is in kilobytes (KiB) on Linux.
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  })}\n`,
);
