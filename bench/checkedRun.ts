// Ours in the conform speed bench (conformSpeed.ts): cowmap's checked run through
// the adapter, as the conformance suite's generated checks run it.

import { join } from 'node:path';
import { AdapterSut } from '../harness/adapter/adapterSut.ts';
import { runFuzz } from '../harness/fuzz/run.ts';
import type { SystemUnderTest } from '../harness/sut/systemUnderTest.ts';
import { keptRunning } from '../harness/sut/systemUnderTest.ts';
import {
  commandsMax,
  type ConformSpeedConfig,
  contentsPerRegion,
  loadAverageNow,
  requestTimeoutMs,
  type RunFigures,
} from './conformSpeedSettings.ts';

/** The same adapter command under cowmap's checked run: runFuzz without crashes, one process for every sequence. */
export class CheckedRun {
  private readonly sut: AdapterSut;
  /** Every sequence creates its volume afresh in the same process; close() of a sequence only ends its volume. */
  private readonly kept: SystemUnderTest;

  constructor(
    command: readonly string[],
    private readonly config: ConformSpeedConfig,
  ) {
    const sut = new AdapterSut(command, { cwd: config.repoRoot, requestTimeoutMs });
    this.sut = sut;
    this.kept = keptRunning(sut);
  }

  start(): Promise<void> {
    return this.sut.start();
  }

  async slice(
    seed: number,
    seconds: number,
  ): Promise<RunFigures & { readonly failure: string | null; readonly runs: number }> {
    const loadAverage = loadAverageNow();
    const result = await runFuzz({
      seed,
      timeBudgetMs: seconds * 1000,
      regions: this.config.regions,
      regionSize: this.config.regionSize,
      labels: contentsPerRegion,
      commandsMax,
      makeSut: () => this.kept,
      crashModes: [],
      crashBetween: false,
      failuresDir: join(this.config.root, 'conform-failures'),
    });
    const failure = result.failure === null ? null : result.failure.message.split('\n')[0]!;
    return { steps: result.steps, seconds: result.seconds, loadAverage, failure, runs: result.runs };
  }

  close(): Promise<void> {
    return this.sut.close();
  }
}
