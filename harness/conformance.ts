// The conformance suite lives in harness/conformance/ (plan, budget, run, report,
// junit, progress); this file keeps the old import path working.

export { levels, traceLevel } from './conformance/plan.ts';
export type { Level } from './conformance/plan.ts';
export { ConformanceRun, runConformance } from './conformance/run.ts';
export type { ConformanceOptions } from './conformance/run.ts';
export { formatReport, jsonReport } from './conformance/report.ts';
export { junitReport } from './conformance/junit.ts';
export type { CaseResult, CheckFailure, CheckResult, ConformanceReport, LevelResult } from './conformance/result.ts';
