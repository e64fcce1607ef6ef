// How much each section of `make bench` does: the full run, and `--quick` (a
// smaller volume, fewer repetitions, shorter budgets, for development).

/** The NBD section's images: 64 MiB, 64 KiB regions for cowmap; the steady job's area is their first 8 MiB. */
const nbdGeometry = { regions: 1024, regionSize: 65536, steadyAreaBytes: 8 << 20 };

/**
 * The remote section's volume: 1 GiB of 64 KiB regions, 1% of them dirty, nbdkit's
 * delay filter at 5 ms a request; the link as the replica's defaults.
 */
const remoteVolume = { regions: 16384, regionSize: 65536, dirtyFraction: 0.01, delayMs: 5, link: {} };

export function plan(quick: boolean) {
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
        nbd: { ...nbdGeometry, repetitions: 2, jobSeconds: 1.5, firstWrites: 64, chunkRegions: 8 },
        remote: { ...remoteVolume, repetitions: 3 },
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
        nbd: { ...nbdGeometry, repetitions: 5, jobSeconds: 3, firstWrites: 256, chunkRegions: 16 },
        remote: { ...remoteVolume, repetitions: 7 },
      };
}

export type Plan = ReturnType<typeof plan>;
