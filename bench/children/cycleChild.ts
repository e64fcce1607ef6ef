// A child process for the memory benchmark: opens an existing volume, dirties
// DIRTY regions (seeded) while idle, runs one cycle as `cowmap cycle` does
// (impl/runCycle.ts), checks that the secondary holds the new content
// of every dirty region, and prints one JSON line with its own peak resident
// memory (process.resourceUsage().maxRSS). The volume must never be held in memory.
//
//   node --import tsx bench/children/cycleChild.ts DIR DIRTY SEED

import { NodeStorage } from '../../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { runCycle } from '../../impl/runCycle.ts';
import { dirtyContent, pickRegions } from '../dirty.ts';
import { secondsSince } from '../stats.ts';

const [dir, dirtyText, seedText] = process.argv.slice(2);
const dirtyCount = Number(dirtyText);
const seed = Number(seedText);
if (dir === undefined || !Number.isInteger(dirtyCount) || dirtyCount < 1 || !Number.isInteger(seed)) {
  process.stderr.write('usage: cycleChild.ts DIR DIRTY SEED\n');
  process.exit(2);
}
const volume = ReplicatedVolume.open(new NodeStorage(), dir);
const dirty = pickRegions(volume.regions, dirtyCount, seed);
const content = dirtyContent(dirty, volume.regionSize, seed);
for (let index = 0; index < dirty.length; index++) volume.writeRegion(dirty[index]!, content[index]!);
const started = process.hrtime.bigint();
const sent = runCycle(volume).regions;
const cycleSeconds = secondsSince(started);
let mismatches = 0;
for (let index = 0; index < dirty.length; index++) {
  if (!Buffer.from(volume.readRegion(dirty[index]!, 'secondary')).equals(Buffer.from(content[index]!))) mismatches++;
}
const volumeBytes = volume.sizeBytes;
volume.close();
process.stdout.write(
  `${JSON.stringify({
    ok: mismatches === 0 && sent.length === dirty.length,
    sent: sent.length,
    mismatches,
    cycleSeconds,
    volumeBytes,
    // maxRSS is in kilobytes (KiB) on Linux.
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  })}\n`,
);
