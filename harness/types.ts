// The harness's shared vocabulary: each word defined once, here, and imported
// wherever it is used (the model's own words live in model/types.ts, the volume's
// in impl/).

import type { ReplicatedVolume } from '../impl/replicatedVolume.ts';

/**
 * How a simulated crash ends the implementation (docs/adapter.md, `crash`):
 * `process` kills it (what reached the OS survives), `power` also drops what no
 * sync made durable.
 */
export type CrashMode = 'process' | 'power';
export const crashModes: readonly CrashMode[] = ['process', 'power'];

/**
 * The faults a checker injects: a crash of either mode, or `torn`, a power loss
 * during which unsynced writes land in part (sector by sector, docs/protocol.md
 * section 5).
 */
export type FaultMode = CrashMode | 'torn';
export const faultModes: readonly FaultMode[] = ['process', 'power', 'torn'];

/** The reference volume's class, or a subclass of it (a planted mutant). */
export type VolumeClass = typeof ReplicatedVolume;
