// Named broken variants of the reference implementation, for the mutation
// self-check: each is the real volume with ONE step overridden, the way a real
// implementation goes wrong. The suite must catch every one (`make mutants`).
// The variants live in harness/mutants/, grouped by what they break; this file
// is their table (name, description, the stages that reach them) and the one
// lookup by name.
//
// Some break a rule in every run (no copy-on-write); others only break what a
// crash or a power loss exposes (the COW copy written after the overwrite, a
// write acknowledged before it is durable): those are caught only by the crash
// checks. Others again break a rule only where small tests never look (high
// regions, bytes past the first sector, long histories): such a mutant names the
// stages that reach it in `reachedBy`.

import type { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import { ConsistentWithoutJournal, consistentMutantName } from '../adapter/consistentMutant.ts';
import {
  AcknowledgedBeforeDurable,
  CompletesBeforeNextDurable,
  CopyAfterOverwrite,
  NextBitAfterData,
  RecoveryForgetsNext,
  RecoveryTrustsPageCache,
  SwapInTwoSteps,
} from './durableOrder.ts';
import {
  CompletesEarly,
  CopyOnWriteOnlyInCurrent,
  NoCopyOnWrite,
  NoNextBitDuringCycle,
  RecoveryDropsCycle,
  SecondWriteRepreserves,
  SwapKeepsNext,
  TransferSendsPrimary,
} from './mapsAndCopies.ts';
import {
  CompletionWritesFirstMapRun,
  InitOverwritesFiles,
  MetadataUpdatedInPlace,
  RecoveryIgnoresDigests,
  RecoveryTruncatesMap,
  RecoveryWithoutDirSync,
} from './namesAndIntegrity.ts';
import { AcceptsUnalignedRegionSize, CreatesOverExistingVolume, IgnoresLock } from './openRules.ts';
import {
  CopyOnWriteStopsAfter50Operations,
  MapKeepsFirst8Bits,
  ThirdCycleKeepsNextBit,
  TransferInTwoHalves,
  TransferSendsPrimaryFromRegion8,
  TransferStopsAtZeroByte,
  WritesFirstSectorOnly,
} from './smallTestsMiss.ts';

/** The stages of `cowmap mutants`: the verify stages, then conform through the adapter. */
export const mutantStageKeys = ['fig4', 'traces', 'paths', 'fuzz', 'crashes', 'crashes-wide', 'conform'] as const;
export type MutantStageKey = (typeof mutantStageKeys)[number];

export interface Mutant {
  readonly volumeClass: typeof ReplicatedVolume;
  readonly description: string;
  /**
   * The stages expected to catch it, when its class of bug is out of reach of the
   * others (small geometries, short histories, one process). Absent: every
   * generic net (fuzz, crashes) and conform must catch it on its own.
   */
  readonly reachedBy?: readonly MutantStageKey[];
}

/** Only the conformance run reaches it. */
const onlyConform: readonly MutantStageKey[] = ['conform'];

/** The wide crash exploration (17 regions, cowmap crashes' second geometry) reaches it. */
const wideCrashes: readonly MutantStageKey[] = ['crashes-wide'];

export const mutants: Readonly<Record<string, Mutant>> = {
  'no-cow': { volumeClass: NoCopyOnWrite, description: 'no copy-on-write' },
  'cow-only-current': {
    volumeClass: CopyOnWriteOnlyInCurrent,
    description: 'copy-on-write only for regions in the current map',
  },
  'second-write-represerves': {
    volumeClass: SecondWriteRepreserves,
    description: 'a second write in a cycle re-preserves',
  },
  'no-next-bit-in-cycle': { volumeClass: NoNextBitDuringCycle, description: 'the next bit not set during a cycle' },
  'swap-keeps-next': { volumeClass: SwapKeepsNext, description: 'a swap that keeps the next map' },
  'transfer-sends-primary': {
    volumeClass: TransferSendsPrimary,
    description: 'a transfer that sends the primary instead of the snapshot view',
  },
  'complete-early': { volumeClass: CompletesEarly, description: 'completion before every region is sent' },
  'recovery-drops-cycle': { volumeClass: RecoveryDropsCycle, description: 'recovery that drops a running cycle' },
  // During a cycle the bit rides on the COW entry either way: only idle writes expose it.
  'next-bit-after-data': {
    volumeClass: NextBitAfterData,
    description: 'the next bit made durable after the data (idle writes)',
  },
  'cow-after-overwrite': { volumeClass: CopyAfterOverwrite, description: 'the COW copy written after the overwrite' },
  'swap-two-steps': { volumeClass: SwapInTwoSteps, description: 'a swap done in two durable steps' },
  'complete-before-next-durable': {
    volumeClass: CompletesBeforeNextDurable,
    description: 'completion before the next bits set in the cycle are durable in the map',
  },
  'recovery-forgets-next': {
    volumeClass: RecoveryForgetsNext,
    description: 'recovery that does not rebuild the next bits from the COW index',
  },
  'recovery-trusts-page-cache': {
    volumeClass: RecoveryTrustsPageCache,
    description: 'recovery that reads the page cache as durable (no sync at open)',
  },
  'ack-before-durable': {
    volumeClass: AcknowledgedBeforeDurable,
    description: 'a write acknowledged before it is durable',
  },
  // The classes of bugs that small geometries, label data and short histories miss.
  'transfer-sends-primary-from-region-8': {
    volumeClass: TransferSendsPrimaryFromRegion8,
    description: 'a transfer that sends the primary instead of the snapshot view, for regions 8 and up only',
    reachedBy: onlyConform,
  },
  'write-first-sector-only': {
    volumeClass: WritesFirstSectorOnly,
    // The crash exploration's 1024-byte regions reach it too.
    description: 'a write that replaces only the first 512-byte sector of a larger region',
  },
  'transfer-stops-at-zero-byte': {
    volumeClass: TransferStopsAtZeroByte,
    // The generators' full-region bytes reach it (label data padded with zeros would not).
    description: 'a transfer that copies a region only up to its first zero byte',
  },
  'map-keeps-8-bits': {
    volumeClass: MapKeepsFirst8Bits,
    description: 'a next map that keeps only its first 8 bits',
    reachedBy: onlyConform,
  },
  'cow-stops-after-50-ops': {
    volumeClass: CopyOnWriteStopsAfter50Operations,
    description: 'copy-on-write that stops after 50 operations since open',
    reachedBy: onlyConform,
  },
  'third-cycle-keeps-next-bit': {
    volumeClass: ThirdCycleKeepsNextBit,
    description: 'the third swap since open keeps a next bit',
    // The hand-written traces and the path tests run three cycles; fast-check's short sequences and the crash exploration do not.
    reachedBy: ['fig4', 'traces', 'paths', 'conform'],
  },
  'transfer-two-halves': {
    volumeClass: TransferInTwoHalves,
    description: 'a transfer that writes the secondary in two halves, each synced (a crash between them shows it)',
  },
  // The protocol's own rules at open: the verify stages never open a volume twice, nor a bad geometry.
  'accepts-unaligned-region-size': {
    volumeClass: AcceptsUnalignedRegionSize,
    description: 'create accepts a region size that is not a multiple of 512',
    reachedBy: onlyConform,
  },
  'creates-over-existing': {
    volumeClass: CreatesOverExistingVolume,
    description: 'create over an existing volume replaces it',
    reachedBy: onlyConform,
  },
  'ignores-lock': {
    volumeClass: IgnoresLock,
    description: 'open of a volume that another live process holds',
    reachedBy: onlyConform,
  },
  // What only the crash exploration's create, recovery, torn and rot modes see (names, integrity).
  'recovery-without-dir-sync': {
    volumeClass: RecoveryWithoutDirSync,
    description:
      'open without the syncs of the volume and secondary directories (a meta that a power loss may take away)',
    reachedBy: ['crashes', 'crashes-wide'],
  },
  'init-overwrites-files': {
    volumeClass: InitOverwritesFiles,
    description: "init that removes files named like the volume's (a user's primary or cow)",
    reachedBy: ['crashes', 'crashes-wide'],
  },
  'recovery-ignores-digests': {
    volumeClass: RecoveryIgnoresDigests,
    description: 'recovery that takes a rotted COW copy for a torn preserve (rot mode)',
    reachedBy: ['crashes', 'crashes-wide'],
  },
  'completion-first-map-run': {
    volumeClass: CompletionWritesFirstMapRun,
    description: 'completion that writes only the first run of changed next-map bytes (17+ regions)',
    reachedBy: wideCrashes,
  },
  'recovery-truncates-map': {
    volumeClass: RecoveryTruncatesMap,
    description: 'recovery that truncates and re-extends the next map before writing it back',
    reachedBy: ['crashes', 'crashes-wide'],
  },
  'metadata-in-place': {
    volumeClass: MetadataUpdatedInPlace,
    description: 'the metadata in a single slot updated in place (a torn update inside the sector)',
    reachedBy: ['crashes', 'crashes-wide'],
  },
  // The consistent image D: only volumes created to keep one report it. The conformance
  // level consistent creates them (docs/conformance.md), and so does a replay of the
  // traces of traces/consistent/, which need the feature; fast-check and the crash
  // exploration do not.
  [consistentMutantName]: {
    volumeClass: ConsistentWithoutJournal,
    description: 'a consistent image that takes each transfer at once (no journal): D before its cycle completes',
    reachedBy: ['traces', 'conform'],
  },
};

/**
 * The one lookup of a mutant by name (the CLI's --mutant, --only and the tests):
 * an unknown name is a RangeError that lists the known ones. Own keys only, so
 * that `constructor` or `toString` is no mutant.
 */
export function mutantNamed(name: string): Mutant {
  const mutant = Object.hasOwn(mutants, name) ? mutants[name] : undefined;
  if (mutant === undefined)
    throw new RangeError(`no mutant named '${name}' (known: ${Object.keys(mutants).join(', ')})`);
  return mutant;
}
