// What one cycle must read, write and sync, from the regions it sends: the bench
// checks the counts of every cycle against it (docs/format.md).

import { digestBatchIo } from '../impl/digestTable.ts';
// One metadata update writes one 512-byte slot (docs/format.md).
import { slotSize as metadataSlotBytes } from '../impl/metadata.ts';
import { cycleBatchBytesMax } from '../impl/runCycle.ts';
import { mapFootprint } from './dirty.ts';

const ioFields = ['bytesRead', 'bytesWritten', 'writeCalls', 'syncCalls'] as const;
type IoField = (typeof ioFields)[number];

export interface CycleExpectedIo {
  readonly counts: Record<IoField, number>;
  /** Batches of transfers (transferRegions calls) the cycle makes. */
  readonly batches: number;
  /** Everything written besides the regions: the metadata slots, the map pages and the digest table. */
  readonly metadataBytes: number;
  /** The part of metadataBytes that is the secondary's digest table. */
  readonly digestBytes: number;
}

/** The regions a batch of transfers holds at most. */
export function cycleBatchRegions(regionSize: number): number {
  return Math.max(1, Math.floor(cycleBatchBytesMax / regionSize));
}

/**
 * Bytes moved: each dirty region read from P and written to S; the metadata: two
 * 512-byte slot updates (swap, completion) and the map pages of C cleared; the
 * secondary's digest table: each page a batch touches read and written once
 * (digestBatchIo). Syncs: per batch one of S and one of its digest table, the two
 * metadata updates, the map.
 */
export function cycleExpectedIo(sent: readonly number[], regionSize: number): CycleExpectedIo {
  const footprint = mapFootprint(sent);
  const digestIo: Record<IoField, number> = { bytesRead: 0, bytesWritten: 0, writeCalls: 0, syncCalls: 0 };
  const batchRegions = cycleBatchRegions(regionSize);
  let batches = 0;
  for (let start = 0; start < sent.length; start += batchRegions) {
    const io = digestBatchIo(sent.slice(start, start + batchRegions));
    for (const field of ioFields) digestIo[field] += io[field];
    batches++;
  }
  const metadataBytes = 2 * metadataSlotBytes + footprint.bytes + digestIo.bytesWritten;
  return {
    counts: {
      bytesRead: sent.length * regionSize + digestIo.bytesRead,
      bytesWritten: sent.length * regionSize + metadataBytes,
      writeCalls: sent.length + 2 + footprint.runs + digestIo.writeCalls,
      syncCalls: batches + digestIo.syncCalls + 3,
    },
    batches,
    metadataBytes,
    digestBytes: digestIo.bytesWritten,
  };
}

/** The fields where `counts` differ from the expected ones, one line each. */
export function ioMismatches(counts: Record<IoField, number>, expected: CycleExpectedIo): string[] {
  return ioFields
    .filter((field) => counts[field] !== expected.counts[field])
    .map((field) => `${field} ${counts[field]}, expected ${expected.counts[field]}`);
}
